"""What a user or a device may put in the catch log: each value checked before anything is written, with a
CatchLogError that names the value and the reason."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import datetime
from typing import Any

from fishcore.errors import FishcoreError

WORDS = ("right", "wrong", "not_fish")  # the user's verdict on an answer
VERDICT_CODES = ("confident", "uncertain", "not_a_fish")
PLACE_MAX, SESSION_MAX, SPECIES_MAX, NAME_MAX = 200, 100, 100, 200
COUNT_MAX, WEIGHT_MAX_KG = 100_000, 100_000.0


class CatchLogError(FishcoreError):
    """A catch log entry or change that cannot be recorded as given (the message says which value and why)."""

    code = "bad_log_entry"


# --- checks on what a user types ---------------------------------------------------------------


def plain_text(value: Any, what: str, limit: int, required: bool = False) -> str:
    text = unicodedata.normalize("NFC", "" if value is None else str(value)).strip()
    if required and not text:
        raise CatchLogError(f"the {what} is empty", what=what)
    if len(text) > limit:
        raise CatchLogError(f"the {what} is longer than {limit} characters ({len(text)})", what=what, limit=limit)
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise CatchLogError(f"the {what} may not contain control characters (new lines, tabs, ...)", what=what)
    return text


def check_place(value: Any) -> str:
    """A place or landing site: at most PLACE_MAX characters, no control characters; may be empty."""
    return plain_text(value, "place", PLACE_MAX)


def check_species(value: Any) -> str:
    """A species name as a user types it: a plain name that can also be a folder (no '/', '\\', leading dot)."""
    name = plain_text(value, "species name", SPECIES_MAX, required=True)
    if any(ch in name for ch in "/\\") or name.startswith("."):
        raise CatchLogError(f"the species name {name!r} may not contain '/' or '\\' or start with a dot", what="species")
    return name


def check_count(value: Any) -> int:
    """How many fish an entry counts: a whole number from 1 to COUNT_MAX."""
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise CatchLogError(f"the count {value!r} is not a number", what="count") from None
    if not number.is_integer() or not 1 <= number <= COUNT_MAX:
        raise CatchLogError(f"the count must be a whole number from 1 to {COUNT_MAX} (not {value!r})", what="count")
    return int(number)


def check_weight(value: Any) -> float | None:
    """An optional weight in kg: empty, or a number above 0 and at most WEIGHT_MAX_KG (a decimal comma is fine)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise CatchLogError(f"the weight {value!r} is not a number", what="weight") from None
    if not math.isfinite(number) or not 0 < number <= WEIGHT_MAX_KG:
        raise CatchLogError(f"the weight must be above 0 and at most {WEIGHT_MAX_KG:g} kg (not {value!r})", what="weight")
    return number


def check_fraction(value: float | None, what: str) -> float | None:
    """A probability-like value (0-1) as stored, or None."""
    if value is None:
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise CatchLogError(f"{what} must be from 0 to 1 (got {value!r})", what=what)
    return number


def entry_row(
    entry_id: str,
    when: datetime,
    answer: Any,
    model_name: str,
    model_checksum: str,
    place: Any = "",
    count: Any = 1,
    weight_kg: Any = None,
    session: str = "",
    device: str | None = None,
    updated_at: datetime | None = None,
) -> dict:
    """An entries-table row for an answer (fishcore.store.catchlog.records.Answer), every value checked: the one
    rule for the station's own answers (CatchLog.record) and a device's (sync.receive)."""
    if answer.verdict not in VERDICT_CODES:
        raise CatchLogError(f"unknown verdict {answer.verdict!r}", what="answer.verdict")
    return {
        "id": entry_id,
        "created_at": when,
        "place": check_place(place),
        "session": plain_text(session, "session label", SESSION_MAX),
        "model_name": plain_text(model_name, "model name", NAME_MAX, required=True),
        "model_checksum": str(model_checksum)[:64],
        "top": json.dumps([[str(s), float(p)] for s, p in answer.top]),
        "label": plain_text(answer.label, "species", NAME_MAX, required=True),
        "confidence": float(answer.confidence),
        "verdict": answer.verdict,
        "reason": plain_text(answer.reason, "reason", 40),
        "count": check_count(count),
        "weight_kg": check_weight(weight_kg),
        "distance": None if answer.distance is None else float(answer.distance),
        "distance_threshold": None if answer.distance_threshold is None else float(answer.distance_threshold),
        "candidates": json.dumps([[str(s), float(p)] for s, p in answer.candidates]) if answer.candidates else None,
        "set_coverage": check_fraction(answer.set_coverage, "set coverage"),
        "threshold": check_fraction(answer.threshold, "threshold"),
        "device": None if device is None else plain_text(device, "device name", SESSION_MAX),
        "updated_at": updated_at,
    }
