"""The benchmarks' shared logic: interleaved rounds and medians (not the speed), and the JAX generator
benchmark on CPU JAX with TensorFlow blocked, as on the GPU machine."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from _common import interleaved, median  # noqa: E402


def test_interleaved_rotates_the_order_and_keeps_every_sample():
    calls = []
    runs = {name: (lambda n=name: calls.append(n) or len(calls)) for name in "abc"}
    times = interleaved(runs, rounds=4)
    assert calls == list("abc" "bca" "cab" "abc")  # every round has each once; the first rotates
    assert times == {"a": [1, 6, 8, 10], "b": [2, 4, 9, 11], "c": [3, 5, 7, 12]}
    with pytest.raises(ValueError, match="rounds"):
        interleaved(runs, rounds=0)


def test_a_noisy_moment_cannot_flip_a_ratio():
    """One configuration is twice as fast; during one round everything runs 5x slower (another process)."""
    clock = {"round": 0, "calls": 0}

    def make(cost):
        def run():
            clock["calls"] += 1
            slow = 5.0 if clock["calls"] in (3, 4) else 1.0  # the second round (calls 3, 4) is disturbed
            return cost * slow
        return run

    times = interleaved({"fast": make(1.0), "slow": make(2.0)}, rounds=3)
    assert median(times["slow"]) / median(times["fast"]) == 2.0
    assert max(times["fast"]) == 5.0  # the noise is in the samples, not in the medians


def test_median():
    assert median([3, 1, 2]) == 2 and median([4, 1, 3, 2]) == 2.5 and median([7]) == 7


def test_jax_generator_benchmark_runs_on_cpu_jax_without_tensorflow():
    pytest.importorskip("jax")
    code = ("from tests.no_tensorflow import block; block(); import runpy, sys; "
            "sys.argv = ['bench_generate_jax.py', '--preset', 'tiny', '--frames', '8', '--batches', '1', '4', "
            "'--rounds', '2']; "
            "runpy.run_path('bench/bench_generate_jax.py', run_name='__main__'); "
            "assert 'tensorflow' not in sys.modules")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "on cpu" in run.stdout and "preset 'tiny'" in run.stdout
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", run.stdout, re.M)
    assert [int(r[0]) for r in rows] == [1, 4]
    for batch, fps, rt, ms in rows:
        assert float(fps) > 0 and abs(float(rt) - float(fps) / 25) < 0.01 and abs(1000 / float(fps) - float(ms)) < 0.1
