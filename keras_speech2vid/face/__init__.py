"""The face pipeline: detect → 68 landmarks → similarity alignment to the 112×112 crop (spec §4);
for video, shots → tracks → smoothing, with the inverse warp for paste-back.

Still images::

    from keras_speech2vid.face import align_image
    aligned = align_image(rgb)            # .face (112,112,3) uint8, .matrix frame→112, .inverse, .landmarks

Video (streamed)::

    from keras_speech2vid.face import track_video
    for frame, rec in track_video("clip.mp4"):
        face = rec.crop(frame) if rec.has_face else None

dlib and its models load lazily, on first use. The geometry (sizes, canonical landmarks, mouth boxes)
is `face.canonical`, NumPy only.
"""

from keras_speech2vid.face.align import (
    AlignedFace,
    align_face,
    align_image,
    align_images,
    aligned_landmarks,
    face_matrix,
    imresize,
    inverse_matrix,
    looks_aligned,
    similarity_fit,
    target_crop,
    target_matrix,
    transform_points,
    warp_face,
    warp_to_frame,
)
from keras_speech2vid.face.canonical import (
    CANVAS_SIZE,
    CROP_SIZE,
    CROP_START,
    FACE_SIZE,
    FILL_VALUE,
    MOUTH_MARGIN,
    TARGET_OFFSET,
    TARGET_SIZE,
    canonical_landmarks,
    lower_mouth_box,
    mouth_box,
)
from keras_speech2vid.face.detect import Detection, box_from_tblr, detect_faces, find_face, iou, select_face
from keras_speech2vid.face.landmarks import ALIGN_INDICES, MOUTH_INDICES, predict_landmarks, predictor_path
from keras_speech2vid.face.track import (
    FaceRecord,
    FaceTracker,
    TrackConfig,
    TrackSpan,
    aligned_crop,
    shot_starts,
    track_frames,
    track_records,
    track_spans,
    track_video,
)

__all__ = [
    "ALIGN_INDICES",
    "CANVAS_SIZE",
    "CROP_SIZE",
    "MOUTH_MARGIN",
    "CROP_START",
    "FACE_SIZE",
    "FILL_VALUE",
    "MOUTH_INDICES",
    "TARGET_OFFSET",
    "TARGET_SIZE",
    "AlignedFace",
    "Detection",
    "FaceRecord",
    "FaceTracker",
    "TrackConfig",
    "TrackSpan",
    "align_face",
    "align_image",
    "align_images",
    "aligned_crop",
    "aligned_landmarks",
    "lower_mouth_box",
    "mouth_box",
    "box_from_tblr",
    "canonical_landmarks",
    "detect_faces",
    "face_matrix",
    "find_face",
    "imresize",
    "inverse_matrix",
    "looks_aligned",
    "iou",
    "predict_landmarks",
    "predictor_path",
    "select_face",
    "shot_starts",
    "similarity_fit",
    "target_crop",
    "target_matrix",
    "track_frames",
    "track_records",
    "track_spans",
    "track_video",
    "transform_points",
    "warp_face",
    "warp_to_frame",
]
