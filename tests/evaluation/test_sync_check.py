"""`speech2vid evaluate-sync` machinery, with the bundled SyncNet on a real fixture clip."""

import numpy as np
import pytest

from keras_speech2vid.evaluation.sync_check import delay_waveform, format_report, sync_check
from keras_speech2vid.sync import SyncNet
from tests.conftest import DATA


def test_delay_waveform_moves_content_by_whole_frames():
    wave = np.arange(1, 16001, dtype=np.float32)
    late = delay_waveform(wave, 5, 25.0)  # 5 frames at 25 fps = 3200 samples
    assert len(late) == len(wave) and not late[:3200].any() and late[3200] == 1.0
    early = delay_waveform(wave, -5, 25.0)
    assert early[0] == 3201.0 and not early[-3200:].any()
    np.testing.assert_array_equal(delay_waveform(wave, 0, 25.0), wave)


def test_sync_check_recovers_known_shifts_and_separates_other_audio(tmp_path):
    net = SyncNet.find()
    if net is None:
        pytest.fail("the bundled weights hold no SyncNet")
    clips = [DATA / "vox2_00086_man_suit_red_bg.mp4", DATA / "grid_lbbc2a_woman_pink_top.mpg"]
    report = sync_check(clips, net, offsets=[-6, 0, 6], progress=False, plots=tmp_path)
    assert {c["clip"] for c in report["clips"]} == {p.stem for p in clips}
    for clip in report["clips"]:
        assert clip["hits_relative"] == 3, clip["estimates"]  # each known shift found, to ±1 frame
        assert clip["real"]["lse_c"] > clip["mismatched"]["lse_c"]
        assert clip["real"]["lse_d"] < clip["mismatched"]["lse_d"]
    assert report["groups"]["all"]["real_above_mismatched"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"sync_{p.stem}.png" for p in clips)
    text = format_report(report)
    assert "chance" in text and "not comparable" in text
