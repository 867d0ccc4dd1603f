"""The evaluation protocol end to end: self-check, the tiny random model on the test clips, the CLI, errors."""

import json

import numpy as np
import pytest

from keras_speech2vid.errors import MediaError, Speech2VidError
from keras_speech2vid.evaluation import EvalConfig, evaluate, read_report, run_evaluation

from .conftest import CLIPS


def strict_json(path):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def check_scored_frames(clip, guard):
    frames = np.asarray(clip["series"]["frame"])
    identity = np.asarray(clip["identity_frames"])
    assert len(frames) == clip["scored"]["count"] > 0
    assert np.abs(frames[:, None] - identity[None, :]).min() > guard  # never the target nor its neighbours
    t = clip["track"]
    assert t["start"] <= identity.min() and frames.max() == t["stop"] - 1
    for series in clip["series"]["aperture"].values():
        assert len(series) == len(frames)


@pytest.fixture(scope="module")
def self_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("self_check")
    report = evaluate([CLIPS[0]], out, EvalConfig(max_seconds=1.2), self_check=True)
    return report, out


def test_self_check_gives_perfect_scores(self_check):
    report, _ = self_check
    (clip,) = report["clips"]
    model = clip["methods"]["model"]
    assert model["psnr"] == np.inf and model["psnr_mouth"] == np.inf
    assert model["ssim"] == pytest.approx(1.0) and model["ssim_mouth"] == pytest.approx(1.0)
    assert model["lmd"] == 0.0
    assert model["aperture_r"] == pytest.approx(1.0) and model["aperture_r_defined"]
    assert model["av_offset"] == 0 and model["av_offset_r"] == pytest.approx(1.0)
    assert report["protocol"]["self_check"] and "mismatched" not in clip["methods"]
    check_scored_frames(clip, guard=2)
    # the clip's lips move: the truth's aperture varies, so r = 1 is a real test
    assert np.ptp(clip["series"]["aperture"]["truth"]) > 0.03
    assert clip["truth_landmarks_detected"] == 1.0


def test_static_baseline_has_aperture_r_0(self_check):
    report, _ = self_check
    static = report["clips"][0]["methods"]["static"]
    assert static["aperture_r"] == 0.0 and not static["aperture_r_defined"]  # constant series: undefined -> 0
    assert static["av_offset"] is None
    assert np.isfinite(static["psnr"]) and 15 < static["psnr"] < 40 and static["lmd"] > 0.3
    assert len(set(report["clips"][0]["series"]["aperture"]["static"])) == 1


def test_self_check_report_files(self_check):
    report, out = self_check
    data = strict_json(out / "report.json")  # strict JSON: +inf is written as "inf"
    assert data["clips"][0]["methods"]["model"]["psnr"] == "inf"
    assert read_report(out / "report.json")["overall"]["model"]["psnr"] == np.inf
    text = (out / "report.md").read_text()
    assert "self-check" in text and "∞" in text and "0.000*" in text
    name = report["clips"][0]["name"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "report.md", "overall_metrics.png", f"{name}_aperture.png", f"{name}_metrics.png"])


def test_cli_end_to_end_with_the_tiny_model(tiny_weights, tmp_path, capsys):
    import cv2

    from keras_speech2vid import cli

    out = tmp_path / "eval"
    rc = cli.main(["evaluate", "--clips", *map(str, CLIPS), "--outdir", str(out), "--weights", str(tiny_weights),
                   "--max-seconds", "1.2", "--identity-frames", "5", "--batch-size", "8"])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "model: PSNR" in stdout and "mismatched: PSNR" in stdout and str(out / "report.md") in stdout

    report = strict_json(out / "report.json")
    assert report["format"] == "keras_speech2vid-evaluation-1"
    assert [c["name"] for c in report["clips"]] == [c.stem for c in CLIPS] and report["skipped"] == []
    assert report["protocol"]["weights"] == str(tiny_weights) and report["protocol"]["deblurrer"]
    for i, clip in enumerate(report["clips"]):
        assert set(clip["methods"]) == {"model", "static", "mismatched"}
        assert CLIPS[(i + 1) % 3].name in clip["mismatch_audio"]
        assert clip["generator_identity_images"] == 5
        check_scored_frames(clip, guard=2)
        for name, m in clip["methods"].items():
            for key in ("psnr", "ssim", "psnr_mouth", "ssim_mouth", "lmd", "aperture_r"):
                assert isinstance(m[key], float) and np.isfinite(m[key]), (name, key)
            assert -1.0 <= m["aperture_r"] <= 1.0 and 0.0 <= m["ssim"] <= 1.0
            if m["av_offset"] is not None:
                assert abs(m["av_offset"]) <= clip["max_lag"] <= 10
        assert clip["methods"]["static"]["aperture_r"] == 0.0
        # the model and the mismatched baseline hear different audio: different frames
        assert clip["per_frame"]["model"]["ssim_mouth"] != clip["per_frame"]["mismatched"]["ssim_mouth"]
        effect = clip["audio_effect"]
        assert effect["frames"] == clip["scored"]["count"] and effect["mouth"] > 0 and effect["rest"] >= 0
        for kind in ("aperture", "metrics"):
            image = cv2.imread(str(out / f"{clip['name']}_{kind}.png"))
            assert image is not None and image.shape[0] > 200 and image.shape[1] > 600
    overall = report["overall"]
    assert set(overall) == {"model", "static", "mismatched", "real"}  # "real": the clips' own LSE-D/LSE-C
    for name in ("model", "static", "mismatched", "real"):
        assert 0.0 <= overall[name]["lse_d"] <= 2.0 and overall[name]["lse_c"] >= 0.0
    # real talking faces are in sync with their audio; a frozen frame is not
    assert overall["real"]["lse_c"] > 2 * overall["static"]["lse_c"]
    assert "LSE-C" in (out / "report.md").read_text()
    assert overall["model"]["frames"] == sum(c["scored"]["count"] for c in report["clips"])
    assert overall["model"]["clips"] == 3
    text = (out / "report.md").read_text()
    assert text.count("| model |") == 4 and text.count("| mismatched |") == 4
    effects = [c["audio_effect"] for c in report["clips"]]
    weighted = sum(e["mouth"] * e["frames"] for e in effects) / sum(e["frames"] for e in effects)
    assert np.isclose(overall["mismatched"]["audio_effect"]["mouth"], weighted)
    assert text.count("Audio effect:") == 4 and f"{weighted:.2f} grey levels" in text
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_clip_without_a_face_is_skipped(tmp_path):
    from keras_speech2vid.io import VideoWriter

    rng = np.random.default_rng(0)
    noface = tmp_path / "noise.mp4"
    with VideoWriter(noface, 25, (96, 96), audio=0.1 * rng.standard_normal(16000).astype(np.float32)) as w:
        for _ in range(12):
            w.write(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    with pytest.raises(Speech2VidError, match="no clip could be evaluated"):
        run_evaluation([noface], self_check=True)
    config = EvalConfig(max_seconds=0.6, identity_frames=1, guard=0)
    report = run_evaluation([noface, CLIPS[1]], config, self_check=True)
    assert [s["path"] for s in report["skipped"]] == [str(noface)] and "no face" in report["skipped"][0]["reason"]
    (clip,) = report["clips"]
    assert clip["identity_frames"] == [1] and clip["scored"]["start"] == 2  # R = ceil(0.2·15) = 3; guard 0


def test_errors_before_any_model_work(tmp_path, capsys):
    from keras_speech2vid import cli

    with pytest.raises(MediaError, match="no such file"):
        run_evaluation([tmp_path / "missing.mp4"], weights=tmp_path / "no_weights")
    rc = cli.main(["evaluate", "--clips", str(tmp_path / "missing.mp4"), "--outdir", str(tmp_path / "o")])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    rc = cli.main(["evaluate", "--clips", str(CLIPS[0]), "--outdir", str(tmp_path / "o"), "--max-seconds", "-1"])
    assert rc == 2 and "max_seconds" in capsys.readouterr().err
    rc = cli.main(["evaluate", "--clips", str(CLIPS[0]), "--outdir", str(tmp_path / "o"),
                   "--weights", str(tmp_path / "no_weights")])
    assert rc == 2 and "no_weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError):
        EvalConfig(identity_frames=0)
