"""Species cards: display names in English and Bahasa Indonesia, the scientific name, a short note.

A model carries its cards in its card (``ModelCard.species``, keyed by class), so a shared model keeps
its names. Training fills them from the cards provided with the project (assets/species.json) for
the classes they match; the Models page edits them for new classes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from fishcore.errors import FishcoreError
from fishcore.settings import Paths
from fishcore.store.jsonfile import write_json

FIELDS = ("en", "id", "scientific", "note_en", "note_id")
MAX_LENGTH = 300  # characters per field: a name or a short note, not an essay


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


def provided_cards(path: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """The cards shipped in assets/species.json, keyed by the class name they are written for."""
    path = Path(path) if path else Paths.from_env().home / "assets" / "species.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["cards"]
    except (OSError, ValueError, KeyError):
        return {}


def clean_card(card: Any) -> dict[str, str]:
    """A card with only the known fields, as stripped text of bounded length (FishcoreError otherwise)."""
    if not isinstance(card, dict):
        raise FishcoreError("a species card must be a set of named fields")
    out = {}
    for field in FIELDS:
        value = card.get(field)
        if value is None or (isinstance(value, float) and value != value):  # empty, or NaN from a table editor
            continue
        if not isinstance(value, str):
            raise FishcoreError(f"species card field {field} must be text")
        value = value.strip()
        if len(value) > MAX_LENGTH:
            raise FishcoreError(f"species card field {field} is longer than {MAX_LENGTH} characters")
        if value:
            out[field] = value
    return out


def cards_for(classes: list[str], provided: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """The provided cards of these classes (matched ignoring case, spaces, '-' and '_'); classes without one are left out."""
    provided = provided_cards() if provided is None else provided
    by_key = {_key(name): card for name, card in provided.items()}
    return {c: clean_card(by_key[_key(c)]) for c in classes if _key(c) in by_key}


def display_name(cards: dict[str, dict[str, str]], label: str, language: str) -> str:
    """The class's name in a language ('en' or 'id'), falling back to English, then to the class name itself."""
    card = cards.get(label) or {}
    return card.get(language) or card.get("en") or label


def save_cards(model_dir: str | os.PathLike, cards: dict[str, Any]) -> None:
    """Replace a saved model's species cards (checked first); the card file is rewritten atomically."""
    from fishcore.store.model_files import CARD_FILE, read_card

    path = Path(model_dir)
    card = read_card(path)
    unknown = sorted(set(cards) - set(card.classes))
    if unknown:
        raise FishcoreError(f"the model has no class {', '.join(unknown)}")
    card.species = {label: cleaned for label, value in cards.items() if (cleaned := clean_card(value))}
    write_json(path / CARD_FILE, card.to_dict(), indent=1)
