"""A malformed request to a SavedModel signature is an error for that request, not an abort of the process."""

import subprocess
import sys

from tests.conftest import ROOT

CHILD = r"""
import sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
f = m.signatures["serving_default"]
ok = f(mfcc=tf.zeros((2, 12, 35, 1)), identity=tf.zeros((1, 112, 112, 15)))["frames"]
assert ok.shape == (2, 109, 109, 3)
cases = {
    "rank 3 mfcc": dict(mfcc=tf.zeros((4, 12, 35)), identity=tf.zeros((1, 112, 112, 15))),
    "scalar mfcc": dict(mfcc=tf.zeros(()), identity=tf.zeros((1, 112, 112, 15))),
    "batch 0": dict(mfcc=tf.zeros((0, 12, 35, 1)), identity=tf.zeros((1, 112, 112, 15))),
    "over the cap": dict(mfcc=tf.zeros((65, 12, 35, 1)), identity=tf.zeros((1, 112, 112, 15))),
    "wrong width": dict(mfcc=tf.zeros((2, 12, 30, 1)), identity=tf.zeros((1, 112, 112, 15))),
    "wrong identity channels": dict(mfcc=tf.zeros((2, 12, 35, 1)), identity=tf.zeros((1, 112, 112, 3))),
    "identity batch 3 for mfcc batch 2": dict(mfcc=tf.zeros((2, 12, 35, 1)), identity=tf.zeros((3, 112, 112, 15))),
    "int32": dict(mfcc=tf.zeros((2, 12, 35, 1), tf.int32), identity=tf.zeros((1, 112, 112, 15))),
}
refused = 0
for name, kwargs in cases.items():
    try:
        f(**kwargs)
    except Exception as e:  # InvalidArgumentError, or TypeError/ValueError at the signature
        refused += 1
        print(name, "->", type(e).__name__)
again = f(mfcc=tf.ones((3, 12, 35, 1)), identity=tf.zeros((1, 112, 112, 15)))["frames"]
assert again.shape == (3, 109, 109, 3) and np.isfinite(again.numpy()).all()
print("refused", refused, "of", len(cases))
"""


def test_malformed_requests_are_refused_and_the_model_keeps_serving(tiny_export):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tiny_export)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", **__import__("os").environ})
    assert out.returncode == 0, out.stderr[-2000:]  # an abort (the old behaviour) is exit 134
    assert "refused 8 of 8" in out.stdout, out.stdout


def test_the_client_keeps_requests_under_the_cap(capsys):
    sys.path.insert(0, str(ROOT / "serving"))
    import client

    code = client.main(["--face", "f.jpg", "--audio", "a.wav", "--outfile", "o.mp4", "--batch", "65"])
    assert code == 2 and "1..64" in capsys.readouterr().err
