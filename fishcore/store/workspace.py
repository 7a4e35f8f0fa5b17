"""The workspace: the folders of fishcore.settings.Paths, plus which saved models exist and which is active.

The active model is the one Predict, the field server and every phone use. Making a model active (the Models
page, `fishcore models activate`, teaching with activation) writes ``.active`` and appends a line to
``.active-history.jsonl``, so `models rollback` can go back to the version that was active before.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fishcore.errors import ModelFileError
from fishcore.settings import Paths
from fishcore.store.jsonfile import read_jsonl
from fishcore.store.model_files import ModelCard, family_of, list_models

ACTIVE_FILE = ".active"
HISTORY_FILE = ".active-history.jsonl"


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

    def set_active_model(self, path: Path, why: str = "") -> None:
        """Make a saved model the active one (written atomically) and remember it in the activation history."""
        path = Path(path)
        self.models.mkdir(parents=True, exist_ok=True)
        before = self.active_model()
        if not (self.models / HISTORY_FILE).is_file() and before is not None and before.resolve() != path.resolve():
            self._remember(before, "active before")  # the bundled model, active by default: rollback comes back to it
        target = self.models / ACTIVE_FILE
        tmp = target.with_name(f".{ACTIVE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(str(path), encoding="utf-8")
        os.replace(tmp, target)
        self._remember(path, why)

    def _remember(self, path: Path, why: str) -> None:
        line = {"model": str(path), "at": datetime.now(UTC).isoformat(timespec="seconds"), "why": why}
        with open(self.models / HISTORY_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def activation_history(self) -> list[dict]:
        """Every activation, oldest first ({'model', 'at', 'why'}); a damaged line is skipped."""
        return [row for row in read_jsonl(self.models / HISTORY_FILE) if isinstance(row.get("model"), str)]

    def previous_model(self) -> Path | None:
        """The model to roll back to: the one active before the active model in the activation history (a rollback
        undoes its activation, so rolling back twice goes back twice), if it still exists; else the active model's
        previous version."""
        active = self.active_model()
        usable = {p.resolve(): p for p in self.model_dirs()}
        current = active.resolve() if active is not None else None
        stack: list[Path] = []
        for row in self.activation_history():
            model = Path(row["model"]).resolve()
            if row.get("why") == "rollback" and len(stack) >= 2 and stack[-2] == model:
                stack.pop()
            else:
                stack.append(model)
        if stack and stack[-1] == current:
            for p in reversed(stack[:-1]):
                if p != current and p in usable:
                    return usable[p]
        if active is not None:
            family, version = family_of(active.name)
            older = [(family_of(p.name)[1], p) for p in usable.values()
                     if family_of(p.name)[0] == family and family_of(p.name)[1] < version]  # fmt: skip
            if older:
                return max(older)[1]
        return None

    def rollback(self) -> Path:
        """Make the previously active model active again (ModelFileError when there is none); the model made active."""
        previous = self.previous_model()
        if previous is None:
            raise ModelFileError("there is no earlier active model to go back to")
        self.set_active_model(previous, why="rollback")
        return previous

    def find_model(self, name: str) -> Path:
        """A saved model by what a user types: 'default' (the bundled model), a folder name ('kakap-v3'), a family
        with its version ('kakap@3'), a family alone (its newest version), or the path of one of the workspace's model folders."""
        usable = self.model_dirs()
        if name == "default":
            return self.bundled_model
        family, _, version = name.partition("@")
        members = sorted((family_of(p.name)[1], p) for p in usable if family_of(p.name)[0] == family)
        if members and version:
            if not version.isdigit():
                raise ModelFileError(f"the version in {name!r} must be a number, e.g. {family}@2")
            for v, p in members:
                if v == int(version):
                    return p
            raise ModelFileError(f"{family} has no version {version} (it has {', '.join(str(v) for v, _ in members)})")
        if members:
            return members[-1][1]  # a family's name alone: its newest version
        for path in usable:
            if path.name == name:
                return path
        path = Path(name).expanduser()
        if path.is_dir():
            for p in usable:
                if p.resolve() == path.resolve():
                    return p
        raise ModelFileError(f"no saved model named {name!r} (`fishcore models list` shows them)")
