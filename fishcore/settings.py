"""The one place that knows every folder fishcore uses and every environment variable it reads.

The library never works out where it is installed: every path starts at the *home* folder, which is
``$FISHCORE_HOME`` when set, else the current directory (``run.sh`` starts everything in the project
folder). The bundled model lives at ``<home>/models/lsfd_mobilenet_v2``; the other folders can each be
moved with their own variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fishcore.errors import ConfigError

# Every environment variable fishcore reads, with what it does (the README's table is made from this).
ENVIRONMENT: dict[str, str] = {
    "FISHCORE_HOME": "the project folder every default path starts from (default: the current directory)",
    "FISHCORE_MODELS_DIR": "where trained models are saved (default: <home>/models)",
    "FISHCORE_RUNS_DIR": "where training jobs keep their state (default: <home>/runs)",
    "FISHCORE_DATASETS_DIR": "the managed dataset area photos are imported into (default: <home>/datasets)",
    "FISHCORE_CACHE_DIR": "feature, scan and thumbnail caches (default: <home>/.cache)",
    "FISHCORE_DATA": "the dataset folder the pages offer first (default: <home>/../shared/data/lsfd when it exists)",
    "FISHCORE_WEIGHTS_DIR": "a folder searched first for ImageNet weights files",
    "FISHCORE_OFFLINE": "1: never download weights (the tests and CI set it)",
    "FISHCORE_PRECISION": "what precision 'auto' means: auto (bf16 where the CPU/GPU has it), bf16 or fp32",
}

BUNDLED_MODEL_NAME = "lsfd_mobilenet_v2"


def _env(name: str) -> str:
    assert name in ENVIRONMENT, name  # a variable read here must be documented above
    return os.environ.get(name, "").strip()


def home() -> Path:
    return Path(_env("FISHCORE_HOME") or os.getcwd()).expanduser().resolve()


def offline() -> bool:
    """True when downloads are forbidden."""
    return _env("FISHCORE_OFFLINE") not in ("", "0")


def weights_dir() -> Path | None:
    value = _env("FISHCORE_WEIGHTS_DIR")
    return Path(value).expanduser() if value else None


def precision_override() -> str:
    """What 'auto' precision resolves to for this process: 'auto' (by hardware), 'bf16' or 'fp32'."""
    value = _env("FISHCORE_PRECISION").lower() or "auto"
    if value not in ("auto", "bf16", "fp32"):
        raise ConfigError("FISHCORE_PRECISION", value, "must be auto, bf16 or fp32")
    return value


@dataclass(frozen=True)
class Paths:
    """The folders the app, the CLI and training jobs use."""

    home: Path
    models: Path
    runs: Path
    cache: Path
    default_data: Path | None
    datasets: Path

    @classmethod
    def from_env(cls) -> Paths:
        root = home()
        data = _env("FISHCORE_DATA")
        shared = root.parent / "shared" / "data" / "lsfd"
        return cls(
            home=root,
            models=Path(_env("FISHCORE_MODELS_DIR") or root / "models"),
            runs=Path(_env("FISHCORE_RUNS_DIR") or root / "runs"),
            cache=Path(_env("FISHCORE_CACHE_DIR") or root / ".cache"),
            default_data=Path(data) if data else (shared if shared.is_dir() else None),
            datasets=Path(_env("FISHCORE_DATASETS_DIR") or root / "datasets"),
        )

    @property
    def bundled_model(self) -> Path:
        """The model shipped with the project (not moved by FISHCORE_MODELS_DIR)."""
        return self.home / "models" / BUNDLED_MODEL_NAME

    @property
    def jobs(self) -> Path:
        return self.runs / "jobs"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbnails"

    @property
    def scans(self) -> Path:
        return self.cache / "scans"

    @property
    def features(self) -> Path:
        return self.cache / "features"

    def record(self, path: str | os.PathLike) -> str:
        """A path for a model card: relative to home when beside it (as ../shared/data is), else absolute."""
        resolved = Path(path).expanduser().resolve()
        try:
            return os.path.relpath(resolved, self.home) if resolved.is_relative_to(self.home.parent) else str(resolved)
        except ValueError:
            return str(resolved)

    def portable(self, recorded: str) -> Path:
        """The inverse of record: relative paths are taken from home."""
        path = Path(recorded)
        return path if path.is_absolute() else (self.home / path).resolve()
