"""Errors a user can cause and fix; entry points show their message in one line, never a traceback."""


class FishcoreError(Exception):
    """Base for every error whose message is meant for the person using the tool."""


class DatasetError(FishcoreError):
    """A dataset folder is missing, empty or unusable."""


class ImageError(FishcoreError):
    """One image cannot be used (corrupt, not an image, too small, too large)."""


class WeightsError(FishcoreError):
    """Pretrained weights are missing, unreadable or not the expected file."""


class ModelFileError(FishcoreError):
    """A saved model is missing, corrupt, incompatible or not a fishcore model."""
