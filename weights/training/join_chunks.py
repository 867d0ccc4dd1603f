# join_chunks.py OUT_DIR MODEL.json OUT.keras: train_jax.py's float16 weight files (OUT_DIR/gen*.npz; arrays
# over 12 MiB split in row blocks NAME@j/m) as a .keras file, model config from MODEL.json
import sys, glob, json, numpy as np, keras
from keras_speech2vid.config import ModelConfig
from keras_speech2vid.models import build_generator
vals = {}
for f in sorted(glob.glob(sys.argv[1] + "/gen*.npz")):
    with np.load(f) as d:
        for k in d.files:
            vals[k] = d[k]
parts = {}
for k in list(vals):
    if "@" in k:
        name, jm = k.split("@"); j, m = map(int, jm.split("/")); parts.setdefault(name, [None] * m)[j] = vals.pop(k)
for name, p in parts.items():
    vals[name] = np.concatenate(p)
g = build_generator(ModelConfig.from_dict(json.load(open(sys.argv[2]))))
assert set(vals) == {v.path for v in g.weights}, set(vals) ^ {v.path for v in g.weights}
for v in g.weights:
    v.assign(vals[v.path].astype(np.float32))
g.save(sys.argv[3]); print("wrote", sys.argv[3], len(vals), "arrays")
