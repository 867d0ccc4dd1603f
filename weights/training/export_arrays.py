# export_arrays.py DATA_DIR OUT.npz [QUALITY]: the train split of a `speech2vid prepare` folder as flat arrays
# for train_jax.py: JPEG bytes (re-encoded at QUALITY if given; 85 made the arrays fit the GPU machine's
# 64 MiB upload), each frame's track and position in it, and its 12x35 MFCC window (the same
# audio.gather_windows call as data.dataset).
import sys, json, numpy as np, tensorflow as tf, cv2
from pathlib import Path
from keras_speech2vid import audio
from keras_speech2vid.data.dataset import parse_track
D = Path(sys.argv[1]); m = json.load(open(D / "manifest.json"))
q = int(sys.argv[3]) if len(sys.argv) > 3 else 0
blobs, track_ids, pos, mfccs = [], [], [], []
t = 0
for v in m["videos"]:
    if v["split"] != "train":
        continue
    for raw in tf.data.TFRecordDataset(str(D / v["record"])):
        tr = parse_track(raw)
        fr = tr["frames"].numpy(); k = tr["frame_index"].numpy()
        w = audio.gather_windows(tr["mfcc"], k, fps=tr["fps"], offset=float(v.get("av_offset", 0.0))).numpy()
        for i, b in enumerate(fr):
            if q:
                img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
                b = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes()
            blobs.append(np.frombuffer(b, np.uint8)); track_ids.append(t); pos.append(i)
        mfccs.append(w[..., 0].astype(np.float16)); t += 1
off = np.cumsum([0] + [len(b) for b in blobs])
np.savez(sys.argv[2], jpeg=np.concatenate(blobs), offsets=off, track=np.array(track_ids, np.int32),
         pos=np.array(pos, np.int32), mfcc=np.concatenate(mfccs))
print(len(blobs), "frames", t, "tracks", off[-1] / 2**20, "MiB jpeg")
