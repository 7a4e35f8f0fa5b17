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

from fishcore.errors import ConfigError, PathNotAllowed

# Every environment variable fishcore reads, with what it does (docs/architecture.md lists them).
ENVIRONMENT: dict[str, str] = {
    "FISHCORE_HOME": "the project folder every default path starts from (default: the current directory)",
    "FISHCORE_MODELS_DIR": "where trained models are saved (default: <home>/models)",
    "FISHCORE_RUNS_DIR": "where training jobs keep their state (default: <home>/runs)",
    "FISHCORE_DATASETS_DIR": "the managed dataset area photos are imported into (default: <home>/datasets)",
    "FISHCORE_CACHE_DIR": "feature, scan, thumbnail and exported-network caches (default: <home>/.cache)",
    "FISHCORE_CATCHLOG_DIR": "the catch log's photos, its SQLite file and its spool (default: <home>/catchlog)",
    "FISHCORE_DB_URL": "the catch log's database, e.g. postgresql+psycopg://user:password@host/db "
    "(default: SQLite in FISHCORE_CATCHLOG_DIR)",
    "FISHCORE_DATA": "the dataset folder the pages offer first (default: <home>/../shared/data/lsfd when it exists)",
    "FISHCORE_WEIGHTS_DIR": "a folder searched first for ImageNet weights files",
    "FISHCORE_OFFLINE": "1: never download weights (the tests and CI set it)",
    "FISHCORE_PRECISION": "what precision 'auto' means: auto (bf16 where the CPU/GPU has it), bf16 or fp32",
    "FISHCORE_RESTRICT_PATHS": "1: the app reads typed folder paths only under the allowed folders; 0: anywhere; "
    "unset: restricted when the app listens beyond localhost",
    "FISHCORE_ALLOWED_DIRS": "folders (separated by the OS path separator) the app may read when paths are restricted, "
    "besides the dataset area and FISHCORE_DATA",
    "FISHCORE_SERVER": "off: `./run.sh` starts the app without the field server",
    "FISHCORE_SERVER_PORT": "the field server's port when `./run.sh` starts it (default: 8502)",
    "FISHCORE_SERVER_PER_MINUTE": "requests per device per minute the field server takes on average (default: 600)",
    "FISHCORE_SERVER_BURST": "requests one device may send the field server at once (default: 120)",
    "FISHCORE_SERVER_MAX_BODY_MB": "the largest request the field server takes, in MB (default: 32)",
    "FISHCORE_PUBLIC_URL": "where phones reach this station's field server, e.g. https://fish.example.org (default: "
    "what the Phones page saved)",
}
LOOPBACK = ("localhost", "127.0.0.1", "::1")

BUNDLED_MODEL_NAME = "lsfd_mobilenet_v2"
SERVER_PORT = 8502  # the field server's (the app's is Streamlit's 8501)


def _env(name: str) -> str:
    assert name in ENVIRONMENT, name  # a variable read here must be documented above
    return os.environ.get(name, "").strip()


def home() -> Path:
    return Path(_env("FISHCORE_HOME") or os.getcwd()).expanduser().resolve()


def server_limits(names: tuple[str, ...]) -> dict[str, float]:
    """The field server's settings given in the environment as FISHCORE_SERVER_<NAME> (ServerConfig.from_env)."""
    out = {}
    for key in names:
        name = f"FISHCORE_SERVER_{key.upper()}"
        if _env(name):
            try:
                out[key] = float(_env(name))
            except ValueError:
                raise ConfigError(name, _env(name), "must be a number") from None
    return out


def public_url() -> str:
    """The station's public address from FISHCORE_PUBLIC_URL ('' when unset: the Phones page's setting counts)."""
    return _env("FISHCORE_PUBLIC_URL")


def db_url() -> str:
    """The catch log's database URL from FISHCORE_DB_URL ('' for the default SQLite file)."""
    return _env("FISHCORE_DB_URL")


def offline() -> bool:
    """True when downloads are forbidden."""
    return _env("FISHCORE_OFFLINE") not in ("", "0")


def weights_dir() -> Path | None:
    value = _env("FISHCORE_WEIGHTS_DIR")
    return Path(value).expanduser() if value else None


def paths_restricted(server_address: str | None) -> bool:
    """Whether typed server paths are limited: FISHCORE_RESTRICT_PATHS=1/0, else when listening beyond localhost.

    Streamlit listens on every network interface when server.address is unset; this project's config
    sets it to localhost, so the app on one's own laptop reads any folder, and one served to an office
    (``--server.address 0.0.0.0``) does not.
    """
    value = _env("FISHCORE_RESTRICT_PATHS").lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return (server_address or "").strip() not in LOOPBACK


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
    catchlog: Path

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
            catchlog=Path(_env("FISHCORE_CATCHLOG_DIR") or root / "catchlog"),
        )

    def allowed_roots(self) -> list[Path]:
        """Where typed paths may point when paths are restricted: the dataset area, FISHCORE_DATA, FISHCORE_ALLOWED_DIRS."""
        extra = [Path(p).expanduser() for p in _env("FISHCORE_ALLOWED_DIRS").split(os.pathsep) if p.strip()]
        roots = [self.datasets, *([self.default_data] if self.default_data else []), *extra]
        return [r.resolve() for r in roots]

    def check_readable(self, path: str | os.PathLike, restricted: bool) -> Path:
        """The typed path, resolved; when restricted, only under an allowed root (else PathNotAllowed)."""
        resolved = Path(path).expanduser().resolve()
        if restricted and not any(resolved == root or resolved.is_relative_to(root) for root in self.allowed_roots()):
            raise PathNotAllowed(
                f"this app is shared on the network, so it only reads folders under: "
                f"{', '.join(str(r) for r in self.allowed_roots())}. Import photos on My photos, or ask the "
                "person who runs it to list the folder in FISHCORE_ALLOWED_DIRS"
            )
        return resolved

    @property
    def bundled_model(self) -> Path:
        """The model shipped with the project (not moved by FISHCORE_MODELS_DIR)."""
        return self.home / "models" / BUNDLED_MODEL_NAME

    @property
    def jobs(self) -> Path:
        return self.runs / "jobs"

    @property
    def comparisons(self) -> Path:
        """Saved comparisons (`fishcore compare`, the Compare page), one folder each."""
        return self.runs / "comparisons"

    @property
    def comparison_jobs(self) -> Path:
        return self.runs / "compare-jobs"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbnails"

    @property
    def scans(self) -> Path:
        return self.cache / "scans"

    @property
    def features(self) -> Path:
        return self.cache / "features"

    @property
    def graphs(self) -> Path:
        """Networks exported to ONNX, so the next process that runs the same network skips the export."""
        return self.cache / "onnx"

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
