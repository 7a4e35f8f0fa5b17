"""Errors a user can cause and fix; entry points show their message in one line, never a traceback.

Each error has a ``code`` (its kind) and ``params`` (the values it is about), so a UI can word it in
its own language; ``str(error)`` is the English wording.
"""

from __future__ import annotations

from typing import Any


class FishcoreError(Exception):
    """Base for every error whose message is meant for the person using the tool."""

    code = "error"

    def __init__(self, message: str = "", **params: Any) -> None:
        super().__init__(message)
        self.params = params


class ConfigError(FishcoreError):
    """A setting has a wrong type or is out of range (``field`` names it, ``reason`` says what it must be)."""

    code = "bad_setting"

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field} = {value!r}: {reason}", field=field, value=value, reason=reason)
        self.field = field
        self.value = value
        self.reason = reason


class DatasetError(FishcoreError):
    """A dataset folder is missing, empty or unusable, or a change to it cannot be made as asked."""

    code = "bad_dataset"


class ImageError(FishcoreError):
    """One image cannot be used (corrupt, not an image, too small, too large)."""

    code = "bad_image"


class WeightsError(FishcoreError):
    """Pretrained weights are missing, unreadable or not the expected file."""

    code = "weights"


class ModelFileError(FishcoreError):
    """A saved model is missing, corrupt, incompatible or not a fishcore model."""

    code = "bad_model"


class ArchiveError(FishcoreError):
    """An uploaded archive as a whole cannot be used (not a zip, or over a limit)."""

    code = "bad_archive"


class PathNotAllowed(FishcoreError):
    """A typed folder is outside what a shared app may read (see settings.paths_restricted)."""

    code = "path_not_allowed"
