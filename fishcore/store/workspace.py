"""Where models, training jobs and caches live, and which model is active; one place for these paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fishcore.store.model_files import DEFAULT_MODEL_DIR, REPO_ROOT, ModelCard, list_models

ACTIVE_FILE = ".active"


@dataclass(frozen=True)
class Workspace:
    """The folders the app and jobs use; each can be moved with an environment variable."""

    models: Path
    runs: Path
    cache: Path
    default_data: Path | None

    @classmethod
    def from_env(cls) -> Workspace:
        env = os.environ.get
        data = env("FISHCORE_DATA")
        shared = REPO_ROOT.parent / "shared" / "data" / "lsfd"
        return cls(
            models=Path(env("FISHCORE_MODELS_DIR") or REPO_ROOT / "models"),
            runs=Path(env("FISHCORE_RUNS_DIR") or REPO_ROOT / "runs"),
            cache=Path(env("FISHCORE_CACHE_DIR") or REPO_ROOT / ".cache"),
            default_data=Path(data) if data else (shared if shared.is_dir() else None),
        )

    @property
    def jobs(self) -> Path:
        return self.runs / "jobs"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbnails"

    def models_with_cards(self) -> list[tuple[Path, ModelCard | None, str]]:
        """Every model folder with its card (or None and why not), the bundled default first if it lives elsewhere."""
        rows = list_models(self.models)
        if DEFAULT_MODEL_DIR.is_dir() and DEFAULT_MODEL_DIR.resolve() not in {p.resolve() for p, _, _ in rows}:
            rows.insert(0, next(r for r in list_models(DEFAULT_MODEL_DIR.parent) if r[0] == DEFAULT_MODEL_DIR))
        return rows

    def model_dirs(self) -> list[Path]:
        """Usable model folders."""
        return [path for path, card, _ in self.models_with_cards() if card is not None]

    def active_model(self) -> Path | None:
        """The model chosen on the Models page, else the bundled default, else the first one found."""
        chosen = self.models / ACTIVE_FILE
        models = self.model_dirs()
        if chosen.is_file():
            name = chosen.read_text(encoding="utf-8").strip()
            for path in models:
                if str(path) == name or path.name == name:
                    return path
        if DEFAULT_MODEL_DIR in models:
            return DEFAULT_MODEL_DIR
        return models[0] if models else None

    def set_active_model(self, path: Path) -> None:
        self.models.mkdir(parents=True, exist_ok=True)
        (self.models / ACTIVE_FILE).write_text(str(path), encoding="utf-8")
