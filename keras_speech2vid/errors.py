"""One exception class per kind of failure. Messages are one line and name the file."""


class Speech2VidError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class MediaError(Speech2VidError):
    """A media file is missing, corrupt, empty or of an unsupported format."""


class AudioError(MediaError):
    """Audio cannot be decoded, has no audio stream, or is unusable."""


class ImageError(MediaError):
    """An image cannot be read or is unusable (too small, corrupt)."""


class NoFaceError(Speech2VidError):
    """No face was found where one is needed."""


class WeightsError(Speech2VidError):
    """A weights file or folder is missing, unreadable, truncated or fails its checksum."""


class TrainingError(Speech2VidError):
    """A run cannot start or continue (inconsistent RUN_DIR, no data)."""


class OutputError(Speech2VidError):
    """An output path cannot be written (a file where a folder is needed, no permission, a name too long)."""
