"""What a user or a device may put in the catch log: each value checked before anything is written, with a
CatchLogError that names the value and the reason."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from fishcore.errors import FishcoreError

WORDS = ("right", "wrong", "not_fish")  # the user's verdict on an answer
VERDICT_CODES = ("confident", "uncertain", "not_a_fish")
PLACE_MAX, SESSION_MAX, SPECIES_MAX, NAME_MAX, REASON_MAX = 200, 100, 100, 200, 40
COUNT_MAX, WEIGHT_MAX_KG = 100_000, 100_000.0
TOP_MAX = 50  # species in an answer's top list or prediction set
DISTANCE_MAX = 4.0  # a cosine distance is at most 2; anything above 4 is no distance at all
DISTANCE_SLACK = 1e-3  # rounding below 0 that is still a distance of 0
PROBABILITY_SLACK = 1e-5  # float32 rounding of a probability just outside 0..1
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no catch was photographed with this app before
FUTURE_SLACK = timedelta(days=2)  # a phone's clock a little ahead, across the date line
# Characters no name may hold: control (Cc), format (Cf: zero-width, direction overrides and isolates, the BOM),
# line and paragraph separators, surrogates and private use. They hide or reorder what a person reads.
HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")


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
    bad = next((ch for ch in text if unicodedata.category(ch) in HIDDEN), None)
    if bad is not None:
        raise CatchLogError(f"the {what} may not contain control characters, zero-width or direction marks (U+{ord(bad):04X})",
                            what=what)  # fmt: skip
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


def check_label(value: Any, what: str = "label") -> str:
    """A species as a model names it (an answer's label, its top list, its set): a species name, up to NAME_MAX."""
    name = plain_text(value, what, NAME_MAX, required=True)
    if any(ch in name for ch in "/\\") or name.startswith("."):
        raise CatchLogError(f"the {what} {name!r} may not contain '/' or '\\' or start with a dot", what=what)
    return name


def check_number(value: Any, what: str, lo: float, hi: float) -> float:
    """A finite number from lo to hi."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CatchLogError(f"{what} must be a number (not {value!r})", what=what) from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise CatchLogError(f"{what} must be from {lo:g} to {hi:g}, a finite number (not {value!r})", what=what)
    return number


def check_probability(value: Any, what: str) -> float:
    """A probability from 0 to 1; float32 rounding just outside (a softmax's 1.0000001) is taken as its bound."""
    try:
        number = check_number(value, what, -PROBABILITY_SLACK, 1.0 + PROBABILITY_SLACK)
    except CatchLogError:
        raise CatchLogError(f"{what} must be from 0 to 1, a finite number (not {value!r})", what=what) from None
    return min(1.0, max(0.0, number))


def check_ranked(pairs: Any, what: str) -> list[list]:
    """An answer's [[species, probability], ...]: at most TOP_MAX, each a species name and a probability."""
    pairs = list(pairs or [])
    if len(pairs) > TOP_MAX:
        raise CatchLogError(f"{what} lists more than {TOP_MAX} species", what=what)
    return [[check_label(s, what), check_probability(p, what)] for s, p in pairs]


def check_when(value: datetime, what: str, now: datetime | None = None) -> datetime:
    """A moment with its zone, in UTC, from 2000 to a little after now (a phone's clock may run ahead)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise CatchLogError(f"{what} needs its time zone, e.g. 2026-12-04T10:00:00+07:00", what=what)
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise CatchLogError(f"{what} is not a date this log can hold", what=what) from None
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    if not EARLIEST <= moment <= latest:
        raise CatchLogError(f"{what} must be from {EARLIEST:%Y-%m-%d} to now (not {value.isoformat()})", what=what)
    return moment


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
    return None if value is None else check_number(value, what, 0.0, 1.0)


def check_distance(value: float | None, what: str) -> float | None:
    """A distance to the nearest training photo, or None. A cosine distance computed in float32 can come out a
    hair below 0 (-2.4e-05 for a photo the model was trained on): that is 0."""
    return None if value is None else max(0.0, check_number(value, what, -DISTANCE_SLACK, DISTANCE_MAX))


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
        "top": json.dumps(check_ranked(answer.top, "answer.top")),
        "label": check_label(answer.label, "answer.label"),
        "confidence": check_probability(answer.confidence, "answer.confidence"),
        "verdict": answer.verdict,
        "reason": plain_text(answer.reason, "reason", REASON_MAX),
        "count": check_count(count),
        "weight_kg": check_weight(weight_kg),
        "distance": check_distance(answer.distance, "answer.distance"),
        "distance_threshold": check_distance(answer.distance_threshold, "answer.distance_threshold"),
        "candidates": json.dumps(check_ranked(answer.candidates, "answer.candidates")) if answer.candidates else None,
        "set_coverage": check_fraction(answer.set_coverage, "set coverage"),
        "threshold": check_fraction(answer.threshold, "threshold"),
        "device": None if device is None else plain_text(device, "device name", SESSION_MAX),
        "updated_at": updated_at,
    }
