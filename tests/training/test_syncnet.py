import json

import numpy as np
import pytest

from keras_speech2vid.config import SyncNetConfig
from keras_speech2vid.sync import SyncNet, audio_windows, normalise_mfcc, video_windows
from keras_speech2vid.training.syncnet import (SyncLogits, SyncSampler, roc_auc, sync_cache, track_arrays,
                                               train_syncnet, validate)
from tests.training.synthetic import synthetic_sync_corpus

# BatchNorm statistics must settle within the few steps of a test
TINY = SyncNetConfig(name="tiny", video_widths=(8, 8, 16, 16), audio_widths=(8, 8, 16, 16), hidden=32, embedding=16,
                     bn_momentum=0.8)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync_corpus")
    synthetic_sync_corpus(out)
    return out


def test_logits_are_own_shifts_then_other_clips():
    n, length, s, e = 3, 4, 2, 5
    rng = np.random.default_rng(0)
    v = rng.normal(size=(n * length, e)).astype("float32")
    a = rng.normal(size=(n * (length + 2 * s), e)).astype("float32")
    got = np.asarray(SyncLogits(n, length, s, scale=2.0)(v, a)).reshape(n, length, -1)
    vv, aa = v.reshape(n, length, e), a.reshape(n, length + 2 * s, e)
    for j in range(n):
        for i in range(length):
            for c in range(2 * s + 1):  # candidate c: own clip at shift c - s
                assert got[j, i, c] == pytest.approx(2 * vv[j, i] @ aa[j, i + c], abs=1e-4)
            for k in range(n):  # other clips at the same place; own clip masked
                want = 2 * vv[j, i] @ aa[k, i + s] if k != j else None
                if want is None:
                    assert got[j, i, 2 * s + 1 + k] < -1e3
                else:
                    assert got[j, i, 2 * s + 1 + k] == pytest.approx(want, abs=1e-4)


def test_roc_auc_counts_pairs_with_ties():
    pos, neg = np.array([0.1, 0.5, 0.5]), np.array([0.5, 0.9])
    pairs = [(p < n) + 0.5 * (p == n) for p in pos for n in neg]
    assert roc_auc(pos, neg) == pytest.approx(np.mean(pairs))
    assert roc_auc([0.0], [1.0]) == 1.0 and roc_auc([1.0], [0.0]) == 0.0


def test_sampler_batches_are_the_right_windows(corpus, tmp_path):
    cache = sync_cache(corpus, "train", tmp_path, progress=False)
    sampler = SyncSampler(cache, TINY, spans=3, span=6, seed=1, augment=False)
    x, y = sampler.batch()
    s = TINY.max_shift
    assert x["video"].shape == (18, 48, 80, 5) and x["mfcc"].shape == (3 * (6 + 2 * s), 12, 20, 1)
    np.testing.assert_array_equal(y, s)
    again = SyncSampler(cache, TINY, spans=3, span=6, seed=1, augment=False)
    picks = again.starts[again.rng.choice(len(again.starts), 3, replace=False)]
    t, p = picks[0]
    crops, k, mfcc, fps = track_arrays(cache, int(t))
    np.testing.assert_array_equal(x["video"][:6], video_windows(crops, np.arange(p, p + 6)))
    want = audio_windows(normalise_mfcc(mfcc, TINY), np.arange(k[p] - s, k[p] + 6 + s), fps, TINY)
    np.testing.assert_allclose(x["mfcc"][:6 + 2 * s], want, atol=1e-6)
    # the cache is reused when the data is the same
    assert (tmp_path / "sync_train.npz").is_file()
    assert sync_cache(corpus, "train", tmp_path, progress=False)["crops"].shape == cache["crops"].shape


def test_training_learns_sync_and_resumes(corpus, tmp_path):
    from keras_speech2vid.models.syncnet import build_syncnet

    val = sync_cache(corpus, "val", tmp_path / "run", progress=False)
    before = validate(SyncNet(build_syncnet(TINY), TINY), val)["auc"]
    args = dict(config=TINY, steps_per_epoch=20, spans=4, span=8, learning_rate=3e-3, verbose=0)
    first = train_syncnet(corpus, tmp_path / "run", epochs=2, **args)
    assert not (tmp_path / "run" / "run.json").read_text() == "" and first["finished"]
    resumed = train_syncnet(corpus, tmp_path / "run", epochs=3, **args)  # continues after epoch 2
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][:2] == first["history"]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["epoch"] == 3
    after = resumed["history"][-1]["val"]["auc"]
    assert after >= 0.65 and after > before + 0.1, (before, after)
    assert resumed["history"][-1]["loss"] < resumed["history"][0]["loss"]


def test_sync_loss_is_cross_entropy_plus_the_pairwise_contrastive_term():
    from keras_speech2vid.training.syncnet import SyncLoss

    s, n, scale = 2, 3, 10.0
    rng = np.random.default_rng(5)
    cos = rng.uniform(-1, 1, size=(4, 2 * s + 1 + n)).astype("float32")
    cos[:, 2 * s + 1] -= 1e4  # the masked own-clip column
    logits, y = cos * scale, np.full(4, s)
    plain = np.asarray(SyncLoss(s, scale)(y, logits))
    z = logits - logits.max(axis=1, keepdims=True)
    ce = np.log(np.exp(z).sum(axis=1)) - z[:, s]
    assert plain == pytest.approx(ce.mean(), rel=1e-5)
    d = np.sqrt(2 - 2 * np.clip(cos, -1, 1))
    negative = np.array([0, 0, 0, 0, 0, 0, 1, 1], bool)  # far = 5 > s: only the other clips (own one masked)
    pair = d[:, s] ** 2 + (np.maximum(1.3 - d[:, negative], 0) ** 2).mean(axis=1)
    both = np.asarray(SyncLoss(s, scale, pair_weight=0.5)(y, logits))
    assert both == pytest.approx((ce + 0.5 * pair).mean(), rel=1e-5)
