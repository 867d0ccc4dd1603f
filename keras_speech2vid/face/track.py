"""Face tracking through a video: shots → detection on keyframes + KLT in between → landmarks → smoothing.

One face is followed per frame (the speaker): at the start of each shot, or after losing the face, the
largest detected face (or the one overlapping a ``box`` hint most) is acquired and then followed.

Use::

    from keras_speech2vid.face.track import track_video

    for frame, rec in track_video("clip.mp4"):        # streamed: bounded memory, any video length
        if rec.has_face:
            face = rec.crop(frame)                      # (112, 112, 3) uint8 aligned face
            back, mask = warp_to_frame(face, rec.matrix, frame.shape[:2])   # paste-back geometry

    records = track_records("clip.mp4")                 # records only (small), e.g. to store in a manifest
    spans = track_spans(records)                        # one `TrackSpan` per track: start/stop frames

Each frame gives one `FaceRecord` (see its docstring for the fields). Frames without a face are marked
(``has_face=False``, ``track=-1``, geometry ``None``), never an error.

The stages, per frame (`FaceTracker.process`):

  1. Shot boundaries: the Bhattacharyya distance between the HSV histograms (16×4×4 bins, on a 90-px-wide
     thumbnail) of consecutive frames; a distance above ``shot_threshold`` starts a new shot and drops the
     track. Within a static shot the distance stays below 0.1; a cut between two GRID clips (same studio)
     gives 0.36.
  2. Acquisition (no current track): dlib HOG on the frame shrunk to ``detect_max_side`` (upsample 1, score
     >= 0.25, as spec §4.1), on every frame until a face is found. A new face gets a new track id.
  3. Following: pyramidal Lucas–Kanade (``cv2.calcOpticalFlowPyrLK``) of corners inside the face box from
     the previous frame, with a forward–backward check; a RANSAC similarity of the survivors moves the box.
     Every ``keyframe_interval`` frames, and at once when KLT loses the face or the landmarks drift off the
     box, the detector runs again near the track (a region twice the box, scaled so the face is about
     110 px; upsample 0), and the track box is reset to the overlapping detection. After ``max_misses``
     keyframes in a row without a detection, or when KLT fails and no detector finds the face, the track ends.
  4. Landmarks: the dlib 68-point predictor on the full-resolution frame, every frame with a face, and the
     frame → 112 alignment matrix from them (`keras_speech2vid.face.align.face_matrix`).
  5. Smoothing (``smooth=True``): the alignment matrix is averaged over a centred Gaussian window
     (``smooth_sigma`` frames, ``smooth_radius`` each side) within the same track. This needs a look-ahead
     of ``smooth_radius`` frames, so the stream lags by that many frames. Landmarks and boxes stay raw.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Iterable, Iterator

import numpy as np

from keras_speech2vid.face.align import face_matrix, inverse_matrix, warp_face
from keras_speech2vid.face.detect import (
    MIN_SCORE,
    UPSAMPLE,
    Detection,
    as_gray,
    as_rgb,
    box_from_tblr,
    detect_faces,
    iou,
    no_box,
)
from keras_speech2vid.face.landmarks import predict_landmarks


@dataclasses.dataclass(frozen=True)
class TrackConfig:
    """Tracker settings. The defaults suit talking-head video from 224 px to full HD."""

    upsample: int = UPSAMPLE  # acquisition detector upsampling (spec: 1)
    min_score: float = MIN_SCORE  # detector score threshold (spec: 0.25)
    detect_max_side: int = 480  # acquisition detection on a copy whose longer side is at most this
    keyframe_interval: int = 10  # re-detect every N frames while following (1: detect on every frame)
    local_redetect: bool = True  # keyframes search only near the track (False: whole-frame acquisition)
    local_face_size: int = 110  # local re-detection scales the region so the face is about this many px
    max_misses: int = 3  # consecutive keyframes without a matching detection before the track ends
    match_iou: float = 0.3  # a detection continues the track when its IoU with the track box is >= this
    min_points: int = 8  # KLT needs at least this many good corners
    max_fb_error: float = 1.0  # forward-backward KLT error (px) above which a corner is dropped
    drift_tolerance: float = 0.15  # landmark centre/spread change vs the box (fraction of box size)
    shot_threshold: float = 0.25  # Bhattacharyya histogram distance that starts a new shot
    smooth: bool = True
    smooth_sigma: float = 1.0  # frames
    smooth_radius: int = 2  # frames each side (the stream's look-ahead)

    def __post_init__(self):
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1. Received: keyframe_interval={self.keyframe_interval}")
        if self.smooth_radius < 0 or self.smooth_sigma <= 0:
            raise ValueError(f"smooth_radius must be >= 0 and smooth_sigma > 0. Received: "
                             f"smooth_radius={self.smooth_radius}, smooth_sigma={self.smooth_sigma}")
        if self.max_misses < 1:
            raise ValueError(f"max_misses must be >= 1. Received: max_misses={self.max_misses}")

    def replace(self, **changes) -> "TrackConfig":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceRecord:
    """What the face pipeline knows about one video frame.

    Attributes:
      index: 0-based frame index in the video.
      shot: 0-based shot id (increments at each detected cut).
      track: track id (unique within the video, increments whenever a face is newly acquired), -1 without face.
      has_face: whether the frame has a followed face. When False, `box`, `landmarks` and `matrix` are None.
      box: (4,) float32 ``[left, top, right, bottom]`` face box in frame pixels (right/bottom exclusive);
        the detector's box on keyframes, the KLT-propagated box in between.
      landmarks: (68, 2) float32 dlib landmarks in frame pixels (x, y), raw (not smoothed).
      matrix: (2, 3) float64 frame pixels → aligned 112-crop pixels (smoothed when smoothing is on).
        ``face = warp_face(frame, matrix)``; its inverse maps the crop back into the frame.
      detected: True when the box comes from the face detector on this frame (a keyframe).
    """

    index: int
    shot: int
    track: int = -1
    has_face: bool = False
    box: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    matrix: np.ndarray | None = None
    detected: bool = False

    @property
    def inverse(self) -> np.ndarray | None:
        """(2, 3) aligned 112-crop pixels → frame pixels (None without face)."""
        return None if self.matrix is None else inverse_matrix(self.matrix)

    def crop(self, frame: np.ndarray) -> np.ndarray | None:
        """The aligned (112, 112, 3) uint8 face of `frame` (the frame this record describes); None without face."""
        return None if self.matrix is None else warp_face(frame, self.matrix)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (lists for arrays)."""
        return {
            "index": self.index, "shot": self.shot, "track": self.track, "has_face": self.has_face,
            "box": None if self.box is None else [float(v) for v in self.box],
            "landmarks": None if self.landmarks is None else self.landmarks.tolist(),
            "matrix": None if self.matrix is None else self.matrix.tolist(),
            "detected": self.detected,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FaceRecord":
        def arr(key, dtype):
            return None if data.get(key) is None else np.asarray(data[key], dtype=dtype)

        return cls(index=int(data["index"]), shot=int(data["shot"]), track=int(data["track"]),
                   has_face=bool(data["has_face"]), box=arr("box", np.float32),
                   landmarks=arr("landmarks", np.float32), matrix=arr("matrix", np.float64),
                   detected=bool(data.get("detected", False)))


def aligned_crop(frame: np.ndarray, record: FaceRecord) -> np.ndarray | None:
    """The aligned 112×112×3 uint8 face of `frame` described by `record` (None when it has no face)."""
    return record.crop(frame)


@dataclasses.dataclass(frozen=True)
class TrackSpan:
    """A track's extent: frames ``start`` to ``stop - 1`` (all in one shot, all with a face)."""

    track: int
    shot: int
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def track_spans(records: Iterable[FaceRecord]) -> list[TrackSpan]:
    """One `TrackSpan` per track id, in order of appearance."""
    spans: dict[int, list[int]] = {}
    for rec in records:
        if rec.has_face:
            span = spans.setdefault(rec.track, [rec.shot, rec.index, rec.index + 1])
            span[2] = rec.index + 1
    return [TrackSpan(track, shot, start, stop) for track, (shot, start, stop) in spans.items()]


def shot_starts(records: Iterable[FaceRecord]) -> list[int]:
    """Frame indices where a new shot begins (the first frame of each shot after the first)."""
    starts, previous = [], None
    for rec in records:
        if previous is not None and rec.shot != previous:
            starts.append(rec.index)
        previous = rec.shot
    return starts


# ----------------------------------------------------------------------------------------------------------


def _histogram(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    small = cv2.resize(as_rgb(frame), (90, max(1, round(90 * h / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, None).flatten()


def _box_shape_stats(landmarks: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Landmark centre (relative to the box centre) and spread, in units of the box size."""
    size = max(1.0, float(box[2] - box[0] + box[3] - box[1]) / 2.0)
    centre = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])
    mean = landmarks.mean(0)
    spread = float(np.sqrt(((landmarks - mean) ** 2).sum(1).mean()))
    return np.array([(mean[0] - centre[0]) / size, (mean[1] - centre[1]) / size, spread / size])


class FaceTracker:
    """The per-frame engine behind `track_frames` (no smoothing): feed frames in order to `process`.

    Keeps only the previous frame's grey image and the track state, so it runs on streams of any length.
    """

    def __init__(self, config: TrackConfig | None = None, box=None):
        self.config = config or TrackConfig()
        self.hint = None if no_box(box) else box_from_tblr(box)
        self.index = -1
        self.shot = 0
        self._next_track = 0
        self._prev_hist = None
        self._prev_gray = None
        self._lost = None
        self._reset_track()

    def _reset_track(self):
        self.track = -1
        self.box = None  # float32 [l, t, r, b]
        self._since_detection = 0
        self._misses = 0
        self._stats = None  # landmark/box relation at the last detection

    def _lose_track(self):
        # remember the lost track for this frame: a whole-frame detection on the same face continues it
        self._lost = (self.index, self.track, self.box)
        self._reset_track()

    # -- detection ---------------------------------------------------------------------------------------

    def _choose(self, detections: list[Detection]) -> Detection | None:
        if not detections:
            return None
        if self.hint is not None:
            overlaps = [iou(d.xyxy, self.hint) for d in detections]
            best = int(np.argmax(overlaps))
            return detections[best] if overlaps[best] > 0 else None
        return detections[0]  # detect_faces sorts by area: the largest

    def _acquire(self, frame) -> Detection | None:
        c = self.config
        return self._choose(detect_faces(frame, upsample=c.upsample, min_score=c.min_score,
                                         max_side=c.detect_max_side))

    def _detect_near(self, gray: np.ndarray, box: np.ndarray) -> Detection | None:
        """Detection overlapping `box` most (IoU >= match_iou), searched near it only; None if none."""
        import cv2

        c = self.config
        if not c.local_redetect:
            dets = detect_faces(gray, upsample=c.upsample, min_score=c.min_score, max_side=c.detect_max_side)
        else:
            size = float(max(box[2] - box[0], box[3] - box[1]))
            cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
            h, w = gray.shape
            x0, y0 = int(max(0, math.floor(cx - size))), int(max(0, math.floor(cy - size)))
            x1, y1 = int(min(w, math.ceil(cx + size))), int(min(h, math.ceil(cy + size)))
            if x1 - x0 < 8 or y1 - y0 < 8:
                return None
            roi = gray[y0:y1, x0:x1]
            scale = c.local_face_size / max(size, 1.0)
            if abs(scale - 1.0) > 0.05:
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                roi = cv2.resize(roi, (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale))),
                                 interpolation=interp)
            sx, sy = roi.shape[1] / (x1 - x0), roi.shape[0] / (y1 - y0)
            dets = [Detection(d.left / sx + x0, d.top / sy + y0, d.right / sx + x0, d.bottom / sy + y0, d.score)
                    for d in detect_faces(roi, upsample=0, min_score=c.min_score)]
        if not dets:
            return None
        overlaps = [iou(d.xyxy, box) for d in dets]
        best = int(np.argmax(overlaps))
        return dets[best] if overlaps[best] >= c.match_iou else None

    # -- KLT ----------------------------------------------------------------------------------------------

    def _klt(self, prev: np.ndarray, cur: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The box moved by optical flow from `prev` to `cur`; None when the flow is unreliable."""
        import cv2

        c = self.config
        h, w = prev.shape
        l, t, r, b = box
        # corners inside the inner part of the box (avoid the background at its edge)
        mx, my = 0.15 * (r - l), 0.1 * (b - t)
        x0, y0 = int(max(0, l + mx)), int(max(0, t + my))
        x1, y1 = int(min(w, r - mx)), int(min(h, b - my))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        min_dist = max(3, int((x1 - x0) / 15))
        pts = cv2.goodFeaturesToTrack(prev[y0:y1, x0:x1], maxCorners=60, qualityLevel=0.01, minDistance=min_dist)
        if pts is None or len(pts) < c.min_points:
            return None
        pts = (pts.reshape(-1, 2) + np.array([x0, y0], dtype=np.float32)).astype(np.float32)
        params = dict(winSize=(21, 21), maxLevel=3,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **params)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **params)
        fb = np.linalg.norm(back - pts, axis=1)
        good = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < c.max_fb_error)
        if good.sum() < c.min_points:
            return None
        m, inliers = cv2.estimateAffinePartial2D(pts[good], nxt[good], method=cv2.RANSAC,
                                                 ransacReprojThreshold=1.5)
        if m is None or inliers is None or inliers.sum() < max(c.min_points, 0.5 * good.sum()):
            return None
        scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
        if not 0.7 < scale < 1.4:
            return None
        cx, cy = (l + r) / 2.0, (t + b) / 2.0
        ncx, ncy = m @ np.array([cx, cy, 1.0])
        hw, hh = scale * (r - l) / 2.0, scale * (b - t) / 2.0
        if not (0 <= ncx < w and 0 <= ncy < h):
            return None
        return np.array([ncx - hw, ncy - hh, ncx + hw, ncy + hh], dtype=np.float32)

    # -- per frame ----------------------------------------------------------------------------------------

    def _start_track(self, detection: Detection):
        self._reset_track()
        lost, self._lost = self._lost, None
        if lost is not None and lost[0] == self.index and iou(lost[2], detection.xyxy) >= self.config.match_iou:
            self.track = lost[1]  # the same face, found again by the whole-frame detector
        else:
            self.track = self._next_track
            self._next_track += 1
        self.box = detection.xyxy

    def process(self, frame: np.ndarray) -> FaceRecord:
        """Advance by one frame (RGB or grey uint8) and return its (unsmoothed) record."""
        c = self.config
        self.index += 1
        gray = np.ascontiguousarray(as_gray(frame))
        hist = _histogram(frame)
        if self._prev_hist is not None and self._prev_gray is not None and self._prev_gray.shape == gray.shape:
            import cv2

            if cv2.compareHist(self._prev_hist, hist, cv2.HISTCMP_BHATTACHARYYA) > c.shot_threshold:
                self.shot += 1
                self._reset_track()
        elif self._prev_gray is not None:  # the frame size changed: treat as a cut
            self.shot += 1
            self._reset_track()
        prev_gray = self._prev_gray
        self._prev_hist, self._prev_gray = hist, gray

        detected = False
        if self.track >= 0:
            moved = self._klt(prev_gray, gray, self.box)
            self._since_detection += 1
            if moved is None or self._since_detection >= c.keyframe_interval:
                found = self._detect_near(gray, self.box if moved is None else moved)
                if found is not None:
                    self.box, detected = found.xyxy, True
                    self._misses, self._since_detection = 0, 0
                elif moved is None:
                    self._lose_track()  # lost by the flow, not confirmed by the detector
                else:
                    self.box = moved
                    self._misses += 1
                    self._since_detection = 0
                    if self._misses >= c.max_misses:
                        self._lose_track()
            else:
                self.box = moved
        if self.track < 0:
            found = self._acquire(frame)
            if found is None:
                return FaceRecord(index=self.index, shot=self.shot)
            self._start_track(found)
            detected = True

        landmarks = predict_landmarks(gray, self.box)
        stats = _box_shape_stats(landmarks, self.box)
        if detected or self._stats is None:
            self._stats = stats
        elif np.abs(stats - self._stats).max() > c.drift_tolerance:
            # the landmarks have moved off the propagated box: re-anchor on the detector
            found = self._detect_near(gray, self.box)
            if found is not None:
                self.box, detected = found.xyxy, True
                self._misses, self._since_detection = 0, 0
                landmarks = predict_landmarks(gray, self.box)
                self._stats = _box_shape_stats(landmarks, self.box)
        return FaceRecord(index=self.index, shot=self.shot, track=self.track, has_face=True,
                          box=self.box.copy(), landmarks=landmarks, matrix=face_matrix(landmarks), detected=detected)


def _gaussian_smooth(stream: Iterator[tuple[np.ndarray, FaceRecord]], radius: int, sigma: float):
    """Average each record's matrix over ±radius frames of the same track (bounded look-ahead)."""
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    history: collections.deque[FaceRecord] = collections.deque(maxlen=radius)
    pending: collections.deque[tuple[np.ndarray, FaceRecord]] = collections.deque()

    def emit():
        frame, rec = pending.popleft()
        if rec.has_face and radius > 0:
            neighbours = list(history) + [rec] + [r for _, r in list(pending)[:radius]]
            offsets = list(range(-len(history), 0)) + [0] + list(range(1, len(neighbours) - len(history)))
            total, acc = 0.0, np.zeros((2, 3))
            for off, nb in zip(offsets, neighbours):
                if nb.track == rec.track and nb.matrix is not None:
                    acc += weights[off + radius] * nb.matrix
                    total += weights[off + radius]
            rec_out = dataclasses.replace(rec, matrix=acc / total)
        else:
            rec_out = rec
        history.append(rec)  # the raw record: smoothing never feeds on smoothed values
        return frame, rec_out

    for item in stream:
        pending.append(item)
        if len(pending) > radius:
            yield emit()
    while pending:
        yield emit()


def track_frames(frames: Iterable[np.ndarray], box=None, smooth: bool | None = None,
                 config: TrackConfig | None = None) -> Iterator[tuple[np.ndarray, FaceRecord]]:
    """Track the face through an iterable of RGB uint8 frames; yields ``(frame, FaceRecord)`` in order.

    Args:
      frames: any iterable of frames (consumed lazily, one at a time).
      box: optional hint ``(top, bottom, left, right)``: follow the face overlapping it most (faces that do
        not overlap it are ignored).
      smooth: temporal smoothing of the alignment matrix (default: ``config.smooth``, True).
      config: `TrackConfig` (defaults if None).

    At most ``smooth_radius + 1`` frames are held at a time.
    """
    config = config or TrackConfig()
    smooth = config.smooth if smooth is None else smooth
    tracker = FaceTracker(config, box=box)
    stream = ((frame, tracker.process(frame)) for frame in frames)
    if smooth and config.smooth_radius > 0:
        stream = _gaussian_smooth(stream, config.smooth_radius, config.smooth_sigma)
    yield from stream


def track_video(path, box=None, smooth: bool | None = None,
                config: TrackConfig | None = None) -> Iterator[tuple[np.ndarray, FaceRecord]]:
    """`track_frames` over the frames of a video file (streamed through ffmpeg by `io.iter_frames`).

    Raises:
      MediaError: the file is missing, unreadable or has no video stream.
    """
    from keras_speech2vid.io import iter_frames

    yield from track_frames(iter_frames(path), box=box, smooth=smooth, config=config)


def track_records(path, box=None, smooth: bool | None = None, config: TrackConfig | None = None) -> list[FaceRecord]:
    """All records of a video (frames are dropped as they are processed, so memory stays small)."""
    return [rec for _, rec in track_video(path, box=box, smooth=smooth, config=config)]
