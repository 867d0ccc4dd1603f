"""Report files from a synthetic report: strict JSON, Markdown tables, plots, atomic writes."""

import json

import numpy as np
import pytest

from keras_speech2vid.evaluation import protocol as P
from keras_speech2vid.evaluation import report as R


def fake_clip(name, rng, n=20):
    frames = list(range(10, 10 + n))
    truth = (0.1 + 0.05 * np.sin(np.arange(n) / 2)).tolist()
    methods, per_frame, aperture = {}, {}, {"truth": truth}
    for method, psnr in (("model", 21.0), ("static", np.inf), ("mismatched", 18.0)):
        values = {k: (rng.random(n) + psnr if k == "psnr" else rng.random(n)).tolist() for k in P.FRAME_METRICS}
        per_frame[method] = values
        constant = method == "static"
        aperture[method] = [0.05] * n if constant else rng.random(n).tolist()
        methods[method] = {**{k: float(np.mean(v)) for k, v in values.items()},
                           "aperture_r": 0.0 if constant else 0.4, "aperture_r_defined": not constant,
                           "av_offset": None if constant else 2, "av_offset_r": 0.0 if constant else 0.5,
                           "landmarks_detected": 1.0}
    return {"name": name, "path": f"/clips/{name}.mp4", "fps": 25.0, "frames_read": 40,
            "track": {"id": 0, "start": 0, "stop": 30}, "identity_frames": [0, 1, 3, 4, 5],
            "generator_identity_images": 5, "static_frame": 5, "scored": {"start": 10, "stop": 30, "count": n},
            "max_lag": 10, "truth_landmarks_detected": 1.0, "methods": methods, "mismatch_audio": "audio of x",
            "series": {"frame": frames, "aperture": aperture, "lag_r": {}}, "per_frame": per_frame}


@pytest.fixture
def report():
    rng = np.random.default_rng(0)
    clips = [fake_clip("a", rng), fake_clip("b", rng, 12)]
    return {"format": P.FORMAT, "created": "now",
            "protocol": {**P.EvalConfig().to_dict(), "self_check": False, "weights": None,
                         "methods": list(P.METHODS), "mouth_box_109": {"top": 61, "bottom": 98, "left": 24,
                                                                       "right": 89}},
            "clips": clips, "skipped": [{"path": "/clips/c.mp4", "reason": "no face"}], "overall": P.overall(clips)}


def test_overall_is_frame_weighted_for_frame_metrics(report):
    a, b = report["clips"]
    o = report["overall"]["model"]
    want = np.mean(a["per_frame"]["model"]["ssim"] + b["per_frame"]["model"]["ssim"])
    assert o["ssim"] == pytest.approx(want) and o["frames"] == 32 and o["clips"] == 2
    assert o["av_offset"] == 2.0 and o["av_offset_abs"] == 2.0
    assert report["overall"]["static"]["av_offset"] is None and report["overall"]["static"]["psnr"] == np.inf


def test_write_report(report, tmp_path):
    import cv2

    paths = R.write_report(report, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in paths) == sorted(
        ["report.json", "report.md", "overall_metrics.png", "a_aperture.png", "a_metrics.png", "b_aperture.png",
         "b_metrics.png"])
    data = json.loads((tmp_path / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["overall"]["static"]["psnr"] == "inf"
    back = R.read_report(tmp_path / "report.json")
    assert back["overall"]["static"]["psnr"] == np.inf and back["clips"][0]["name"] == "a"
    text = (tmp_path / "report.md").read_text()
    assert text.count("| method |") == 3 and "## a" in text and "## b" in text and "## Skipped" in text
    assert "0.000*" in text and "∞" in text and "+2 (r 0.50)" in text
    for png in tmp_path.glob("*.png"):
        image = cv2.imread(str(png))
        assert image is not None and image.std() > 10  # something was drawn


def test_plots_handle_edge_values():
    img = R.line_plot({"truth": [1.0, 1.0], "model": [np.nan, 1.0]}, [5, 5], "t", "x", "y")
    assert img.shape == (400, 960, 3) and img.dtype == np.uint8
    bars = R.bar_panels({"m": {"model": np.inf, "static": None, "mismatched": -0.5}}, "t")
    assert bars.shape[0] > 300 and bars.dtype == np.uint8
