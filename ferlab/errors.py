"""Exception types a user can act on; the CLI prints them as one line and exits non-zero."""

__all__ = [
    "FerlabError",
    "DataError",
    "SourceNotFoundError",
    "UnsafeArchiveError",
    "ModelError",
    "CheckpointError",
    "ConfigError",
    "FaceNotFoundError",
    "ImageDecodeError",
]


class FerlabError(Exception):
    """Base class: an error caused by the user's input, reported without a traceback."""

    exit_code = 2


class DataError(FerlabError):
    """A data source cannot be read or holds nothing usable."""


class SourceNotFoundError(DataError):
    """The path given as a data source does not exist."""


class UnsafeArchiveError(DataError):
    """An archive entry is refused (path traversal, decompression bomb, absurd dimensions)."""


class ImageDecodeError(DataError):
    """An image file cannot be decoded."""


class ModelError(FerlabError):
    """Unknown model name or incompatible model options."""


class CheckpointError(FerlabError):
    """A checkpoint is missing, corrupt, or of another kind/class scheme."""


class ConfigError(FerlabError):
    """A configuration file or flag combination is invalid."""


class FaceNotFoundError(FerlabError):
    """No face was found where one was required."""
