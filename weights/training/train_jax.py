# train_jax.py: the script that continued the demo generator on a lent GPU machine (NVIDIA H200) that
# has JAX but no TensorFlow: Keras 3 on JAX, the package's own model builders, and the losses of
# keras_speech2vid.training.train (mouth-weighted L1 + shape_weight x the aperture term read by the
# frozen luma mouth expert on the composite). Not part of the package; see weights/MODEL_CARD.md.
# Data: the arrays of export_arrays.py (every frame a target; identities from the same track,
# >= 25 frames away, as data.dataset). Weights in and out: float16 npz, keyed by variable path;
# join_chunks.py turns the output into a .keras file.
import argparse, json, os, sys, time
os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # the package __init__ imports no TF; only models/face.align are used
import numpy as np, cv2, jax, jax.numpy as jnp, optax, keras
from keras_speech2vid.config import ModelConfig
from keras_speech2vid.models.generator import build_generator
from keras_speech2vid.models.mouth_expert import build_mouth_expert, aperture_matrix
from keras_speech2vid.face.canonical import mouth_box

p = argparse.ArgumentParser()
p.add_argument("--gen", required=True); p.add_argument("--expert"); p.add_argument("--data")
p.add_argument("--out", required=True); p.add_argument("--seconds", type=float, default=60)
p.add_argument("--batch", type=int, default=64); p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--lr-end", type=float, default=1e-5); p.add_argument("--decay-from", type=float, default=0.7)
p.add_argument("--mouth-weight", type=float, default=4.0); p.add_argument("--shape-weight", type=float, default=0.3)
p.add_argument("--min-distance", type=int, default=25); p.add_argument("--save-at", type=float, default=0.6)
p.add_argument("--bf16", type=int, default=1); p.add_argument("--seed", type=int, default=0)
p.add_argument("--synthetic", type=int, default=0, help="N random frames instead of --data (timing)")
a = p.parse_args()
t_start = time.time()
print("devices", jax.devices(), "tensorflow loaded:", "tensorflow" in sys.modules, flush=True)

def load_into(model, path):
    with np.load(path) as d:
        for v in model.weights:
            val = d[v.path]; assert tuple(val.shape) == tuple(v.shape), v.path
            v.assign(val.astype(np.float32))

def save_chunks(model, out, prefix):
    arrays = []
    for v in model.weights:  # arrays over 12 MiB in float16 go in row blocks: NAME@j/m
        x = np.asarray(v.numpy()); m = 1 if x.ndim < 2 else -(-x.nbytes // 2 // (12 * 2**20))
        arrays += [(v.path, x)] if m == 1 else [(f"{v.path}@{j}/{m}", part) for j, part in enumerate(np.array_split(x, m))]
    per = 14 * 2**20  # files come back from the device machine only if each is < 16 MiB
    groups, size = [[]], 0
    for name, x in arrays:
        n = x.nbytes // (2 if x.ndim >= 2 else 1)
        if size + n > per and groups[-1]:
            groups.append([]); size = 0
        groups[-1].append((name, x)); size += n
    for i, g in enumerate(groups):
        tmp = os.path.join(out, f".{prefix}{i}.npz")
        np.savez(tmp, **{k: (x.astype(np.float16) if x.ndim >= 2 else x.astype(np.float32)) for k, x in g})
        os.replace(tmp, os.path.join(out, f"{prefix}{i}.npz"))

cfg = ModelConfig.from_dict(json.load(open(a.gen.replace(".npz", ".json"))))
if a.bf16:
    keras.config.set_dtype_policy("mixed_bfloat16")
gen = build_generator(cfg); load_into(gen, a.gen)
keras.config.set_dtype_policy("float32")  # the expert reads in float32, as in training.train
size = cfg.output_size
# the mouth box and L1 weight map of training.train, rebuilt here: that module imports TensorFlow
top, bottom, left, right = mouth_box(size=size)
box = np.zeros((size, size), np.float32); box[top:bottom, left:right] = 1
wmap = 1 + a.mouth_weight * box; wmap = jnp.asarray((wmap / wmap.mean())[None, :, :, None])
box = jnp.asarray(box[None, :, :, None]); A = jnp.asarray(aperture_matrix())
use_expert = a.shape_weight > 0
if use_expert:
    expert = build_mouth_expert(size); load_into(expert, a.expert)
    e_w = ([v.value for v in expert.trainable_variables], [v.value for v in expert.non_trainable_variables])
else:
    e_w = ([], [])

# ---- data: all frames decoded once, kept on the GPU as uint8
if a.synthetic:
    rng0 = np.random.default_rng(0)
    frames = rng0.integers(0, 255, (a.synthetic, 112, 112, 3), np.uint8)
    mfcc = rng0.normal(size=(a.synthetic, 12, 35)).astype(np.float16)
    track = np.repeat(np.arange(a.synthetic // 100 + 1), 100)[:a.synthetic].astype(np.int32)
    pos = (np.arange(a.synthetic) % 100).astype(np.int32)
else:
    d = np.load(a.data)
    jpeg, off = d["jpeg"], d["offsets"]; track, pos, mfcc = d["track"], d["pos"], d["mfcc"]
    frames = np.stack([cv2.cvtColor(cv2.imdecode(jpeg[off[i]:off[i + 1]], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                       for i in range(len(track))])
N = len(track)
starts = np.zeros(track.max() + 2, np.int64); np.add.at(starts, track + 1, 1); starts = np.cumsum(starts)
lengths = np.diff(starts)
print(f"{N} frames, {len(lengths)} tracks, decoded in {time.time() - t_start:.0f}s", flush=True)
frames_d = jnp.asarray(frames); mfcc_d = jnp.asarray(mfcc)
rng = np.random.default_rng(a.seed)
n_id = cfg.identity_images

def sample_batch(B):
    t = rng.integers(0, N, B)
    ids = np.empty((B, n_id), np.int64)
    for b, i in enumerate(t):
        L, s, p0 = lengths[track[i]], starts[track[i]], pos[i]
        dist = np.abs(np.arange(L) - p0)
        ok = np.flatnonzero(dist >= min(a.min_distance, dist.max()))
        ids[b] = s + rng.choice(ok, n_id)
    return t, ids

@jax.jit
def make_inputs(frames_d, mfcc_d, t, ids):
    target = frames_d[t][:, 1:1 + size, 1:1 + size].astype(jnp.float32) / 255.0
    ident = frames_d[ids].astype(jnp.float32) / 255.0  # (B, n, 112, 112, 3)
    ident = jnp.transpose(ident, (0, 2, 3, 1, 4)).reshape(ident.shape[0], 112, 112, 3 * n_id)
    return {"mfcc": mfcc_d[t].astype(jnp.float32)[..., None], "identity": ident}, target

# ---- step
tv = [v.value for v in gen.trainable_variables]; ntv = [v.value for v in gen.non_trainable_variables]
opt = optax.inject_hyperparams(optax.adam)(learning_rate=a.lr)
opt_state = opt.init(tv)

def loss_fn(tv, ntv, e_w, x, y):
    out, ntv2 = gen.stateless_call(tv, ntv, x, training=True)
    o = out["frame"].astype(jnp.float32)
    l1 = jnp.mean(jnp.abs(y - o) * wmap)
    ap = jnp.float32(0)
    if use_expert:
        comp = y + (o - y) * box
        e1, _ = expert.stateless_call(*e_w, comp, training=False)
        e2, _ = expert.stateless_call(*e_w, y, training=False)
        ap = jnp.mean(jnp.abs((e1 - e2) @ A))
    return l1 + a.shape_weight * ap, (ntv2, l1, ap)

@jax.jit
def step(tv, ntv, opt_state, e_w, x, y, lr):
    (loss, (ntv, l1, ap)), g = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv, e_w, x, y)
    opt_state.hyperparams["learning_rate"] = lr
    upd, opt_state = opt.update(g, opt_state, tv)
    return optax.apply_updates(tv, upd), ntv, opt_state, l1, ap

def write_back():
    for v, x in zip(gen.trainable_variables, tv): v.assign(x)
    for v, x in zip(gen.non_trainable_variables, ntv): v.assign(x)

os.makedirs(a.out, exist_ok=True)
log = open(os.path.join(a.out, "log.csv"), "w"); log.write("step,seconds,lr,l1,aperture\n")
t0 = time.time(); budget = a.seconds - (t0 - t_start); k = 0; saved_mid = False
acc = []
while True:
    el = time.time() - t0
    if el > budget:
        break
    frac = el / budget
    lr = a.lr if frac < a.decay_from else a.lr + (a.lr_end - a.lr) * (frac - a.decay_from) / (1 - a.decay_from)
    x, y = make_inputs(frames_d, mfcc_d, *sample_batch(a.batch))
    tv, ntv, opt_state, l1, ap = step(tv, ntv, opt_state, e_w, x, y, jnp.float32(lr))
    acc.append((l1, ap)); k += 1
    if k % 200 == 0 or k == 1:
        m = np.mean([[float(u), float(w)] for u, w in acc], axis=0); acc = []
        line = f"{k},{time.time() - t0:.1f},{lr:.2e},{m[0]:.5f},{m[1]:.4f}"
        print(line, flush=True); log.write(line + "\n"); log.flush()
    if not saved_mid and frac > a.save_at:
        write_back(); save_chunks(gen, a.out, "gen"); saved_mid = True
        print(f"saved at step {k}", flush=True)
write_back(); save_chunks(gen, a.out, "gen")
json.dump({"steps": k, "batch": a.batch, "seconds": time.time() - t0, "args": vars(a), "model": cfg.to_dict()},
          open(os.path.join(a.out, "run.json"), "w"), indent=1)
print(f"done: {k} steps in {time.time() - t0:.0f}s ({k / (time.time() - t0):.1f} steps/s)", flush=True)
