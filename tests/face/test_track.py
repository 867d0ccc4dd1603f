"""Video: shots, tracks, face-less stretches, smoothing, streaming, and the per-frame record."""

import json
import subprocess

import numpy as np
import pytest

from tests.conftest import DATA, shared_path
from keras_speech2vid.errors import MediaError
from keras_speech2vid.face import (
    FaceRecord,
    TrackConfig,
    aligned_crop,
    face_matrix,
    shot_starts,
    track_frames,
    track_records,
    track_spans,
    track_video,
    transform_points,
)
from keras_speech2vid.io import VideoWriter, ffmpeg_exe, iter_frames

GRID_CLIPS = ["grid_bbaf2n_man_denim.mpg", "grid_lbbc2a_woman_pink_top.mpg"]
MIN_COVERAGE = 0.95


def _check_one_track(records):
    assert [r.index for r in records] == list(range(len(records)))
    spans = track_spans(records)
    assert len(spans) == 1, spans
    coverage = spans[0].length / len(records)
    assert coverage >= MIN_COVERAGE
    assert shot_starts(records) == []
    for rec in records:
        if rec.has_face:
            assert rec.track == spans[0].track
            assert rec.landmarks.shape == (68, 2) and rec.landmarks.dtype == np.float32
            assert rec.matrix.shape == (2, 3) and rec.box.shape == (4,)
    return coverage


@pytest.fixture(scope="module")
def grid_records():
    return {name: track_records(DATA / name) for name in GRID_CLIPS}


@pytest.mark.parametrize("name", GRID_CLIPS)
def test_grid_clip_gives_one_track(grid_records, name):
    records = grid_records[name]
    assert len(records) == 75
    coverage = _check_one_track(records)
    print(f"\n{name}: one track, coverage {coverage:.0%}")
    # keyframes: detection every 10 frames, KLT in between
    assert 7 <= sum(r.detected for r in records) <= 15


def test_every_shared_grid_clip_gives_one_track():
    clips = sorted(shared_path("data", "clips").glob("grid_*.mpg"))
    assert len(clips) >= 6
    for clip in clips:
        coverage = _check_one_track(track_records(clip))
        print(f"\n{clip.name}: one track, coverage {coverage:.0%}")


def _ffmpeg(*args):
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def test_two_concatenated_clips_give_a_cut_and_two_tracks(tmp_path):
    out = tmp_path / "two_people.mp4"
    _ffmpeg("-i", DATA / GRID_CLIPS[0], "-i", DATA / GRID_CLIPS[1], "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "20", "-pix_fmt", "yuv420p", out)
    records = track_records(out)
    assert len(records) == 150
    cuts = shot_starts(records)
    print(f"\nconcatenated GRID clips: shot starts at frames {cuts} (cut at 75)")
    assert len(cuts) == 1 and abs(cuts[0] - 75) <= 1
    spans = track_spans(records)
    assert len(spans) == 2
    assert spans[0].shot == 0 and spans[1].shot == 1 and spans[0].track != spans[1].track
    assert spans[0].length >= 70 and spans[1].length >= 70


def test_faceless_stretch_is_marked_not_fatal(tmp_path):
    out = tmp_path / "with_black.mp4"
    dark = range(30, 45)
    with VideoWriter(out, fps=25, size=(360, 288)) as writer:
        for i, frame in enumerate(iter_frames(DATA / GRID_CLIPS[0])):
            writer.write(np.zeros_like(frame) if i in dark else frame)
    records = []
    for frame, rec in track_video(out):
        records.append(rec)
        crop = aligned_crop(frame, rec)
        assert (crop is None) == (not rec.has_face)
        if crop is not None:
            assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert len(records) == 75
    for i in dark:
        rec = records[i]
        assert not rec.has_face and rec.track == -1
        assert rec.box is None and rec.landmarks is None and rec.matrix is None and rec.inverse is None
    others = [r for r in records if r.index not in dark]
    assert sum(r.has_face for r in others) >= 0.95 * len(others)
    assert len(track_spans(records)) == 2  # the face is acquired again after the dark stretch


def test_missing_video_raises_media_error(tmp_path):
    with pytest.raises(MediaError, match="nothing.mp4"):
        next(track_video(tmp_path / "nothing.mp4"))


def test_box_hint_follows_only_an_overlapping_face():
    frames = list(iter_frames(DATA / GRID_CLIPS[0]))[:6]
    away = [rec for _, rec in track_frames(frames, box=(0, 40, 0, 40))]  # top-left corner: no face there
    assert not any(r.has_face for r in away)
    first = next(iter(track_frames(frames[:1], smooth=False)))[1]
    l, t, r, b = first.box
    near = [rec for _, rec in track_frames(frames, box=(t, b, l, r))]
    assert all(r.has_face for r in near)


def test_smoothing_is_local_to_the_track_and_reduces_jitter(grid_records):
    frames = list(iter_frames(DATA / GRID_CLIPS[0]))
    raw = [rec for _, rec in track_frames(frames, smooth=False)]
    smooth = grid_records[GRID_CLIPS[0]]
    for r in raw:
        np.testing.assert_allclose(r.matrix, face_matrix(r.landmarks))
    for r, s in zip(raw, smooth):
        np.testing.assert_array_equal(r.landmarks, s.landmarks)  # landmarks and boxes stay raw
        # the smoothed crop differs from the raw one by at most a pixel or two
        diff = transform_points(s.matrix, r.landmarks[27:48]) - transform_points(r.matrix, r.landmarks[27:48])
        assert np.abs(diff).max() < 2.0

    centre = np.array([[56.0, 56.0]])

    def jitter(records):  # second difference of where the crop centre sits in the frame
        t = np.array([transform_points(r.inverse, centre)[0] for r in records])
        return np.abs(t[2:] - 2 * t[1:-1] + t[:-2]).mean()

    assert jitter(smooth) < 0.7 * jitter(raw)


def test_frames_are_streamed_with_a_bounded_look_ahead():
    config = TrackConfig()
    frames = iter_frames(DATA / GRID_CLIPS[1])
    pulled = []

    def source():
        for frame in frames:
            pulled.append(len(pulled))
            yield frame

    for frame, rec in track_frames(source(), config=config):
        assert len(pulled) - 1 - rec.index <= config.smooth_radius
        assert frame.shape == (288, 360, 3)
        if rec.index == 20:
            break


def test_detection_on_every_frame_mode():
    frames = list(iter_frames(DATA / GRID_CLIPS[0]))[:10]
    config = TrackConfig(keyframe_interval=1, local_redetect=False)
    records = [rec for _, rec in track_frames(frames, config=config)]
    assert all(r.detected and r.has_face for r in records)
    assert len(track_spans(records)) == 1
    with pytest.raises(ValueError, match="keyframe_interval"):
        TrackConfig(keyframe_interval=0)


def test_record_round_trips_through_json(grid_records):
    rec = grid_records[GRID_CLIPS[0]][3]
    back = FaceRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert (back.index, back.shot, back.track, back.has_face, back.detected) == (
        rec.index, rec.shot, rec.track, rec.has_face, rec.detected)
    np.testing.assert_allclose(back.matrix, rec.matrix)
    np.testing.assert_allclose(back.landmarks, rec.landmarks)
    np.testing.assert_allclose(back.box, rec.box)
    empty = FaceRecord(index=4, shot=1)
    assert FaceRecord.from_dict(json.loads(json.dumps(empty.to_dict()))).to_dict() == empty.to_dict()
