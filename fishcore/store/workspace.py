"""The workspace: the folders of fishcore.settings.Paths, plus which saved models exist and which is active."""

from __future__ import annotations

from pathlib import Path

from fishcore.settings import Paths
from fishcore.store.model_files import ModelCard, list_models

ACTIVE_FILE = ".active"


class Workspace(Paths):
    """Paths plus the model registry the pages and the CLI share."""

    def models_with_cards(self) -> list[tuple[Path, ModelCard | None, str]]:
        """Every model folder with its card (or None and why not), the bundled model first if it lives elsewhere."""
        rows = list_models(self.models)
        bundled = self.bundled_model
        if bundled.is_dir() and bundled.resolve() not in {p.resolve() for p, _, _ in rows}:
            rows.insert(0, next(r for r in list_models(bundled.parent) if r[0] == bundled))
        return rows

    def model_dirs(self) -> list[Path]:
        """Usable model folders."""
        return [path for path, card, _ in self.models_with_cards() if card is not None]

    def active_model(self) -> Path | None:
        """The model chosen on the Models page, else the bundled one, else the first one found."""
        chosen = self.models / ACTIVE_FILE
        models = self.model_dirs()
        if chosen.is_file():
            name = chosen.read_text(encoding="utf-8").strip()
            for path in models:
                if str(path) == name or path.name == name:
                    return path
        if self.bundled_model in models:
            return self.bundled_model
        return models[0] if models else None

    def set_active_model(self, path: Path) -> None:
        self.models.mkdir(parents=True, exist_ok=True)
        (self.models / ACTIVE_FILE).write_text(str(path), encoding="utf-8")
