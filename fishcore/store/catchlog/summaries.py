"""What the catch log adds up to: fish per species per day, each model's accuracy on confirmed photos per week,
and the entries as CSV for a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fishcore.store.catchlog.kept_back import used_as
from fishcore.store.catchlog.records import Entry

NOT_SURE = ""  # counts_per_day's species for fish nobody has named yet (not confident, no word)


def counted_as(e: Entry) -> str | None:
    """The species an entry counts towards: the user's word, else a confident answer, else NOT_SURE; None: no fish."""
    if e.word == "not_fish" or (e.word is None and e.verdict == "not_a_fish"):
        return None
    if e.word is not None:
        return e.species
    return e.label if e.verdict == "confident" else NOT_SURE


def counts_per_day(items: Iterable[Entry]) -> list[dict]:
    """Fish counted per species per day (UTC), each entry's count under counted_as; photos of no fish left out."""
    totals: dict[tuple[str, str], int] = {}
    for e in items:
        species = counted_as(e)
        if species is not None:
            key = (e.created_at.date().isoformat(), species)
            totals[key] = totals.get(key, 0) + e.count
    return [{"day": d, "species": s, "fish": n} for (d, s), n in sorted(totals.items())]


def accuracy_by_week(items: Iterable[Entry]) -> list[dict]:
    """How often each model version was right on the entries users gave a word on, per ISO week, and per what the
    entries are to training (used_as): a version's score on photos it was taught is not its score on new ones."""
    tally: dict[tuple[str, str, str], list[int]] = {}
    for e in items:
        if e.right is None:
            continue
        year, week, _ = e.created_at.isocalendar()
        key = (f"{year}-W{week:02d}", f"{e.model_name} ({e.model_checksum[:8]})", used_as(e))
        right_total = tally.setdefault(key, [0, 0])
        right_total[0] += bool(e.right)
        right_total[1] += 1
    return [
        {"week": w, "model": m, "entries": part, "right": r, "confirmed": n, "accuracy": r / n}
        for (w, m, part), (r, n) in sorted(tally.items())
    ]


CSV_COLUMNS = (
    "id", "created_at", "place", "session", "model_name", "model_checksum", "label", "confidence", "verdict", "reason",
    "count", "weight_kg", "word", "true_species", "word_by", "word_at", "photo_sha256", "top", "candidates",
    "set_coverage", "threshold", "device",
)  # fmt: skip


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (or a tab or return) gets a leading quote."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(items: Iterable[Entry]) -> str:
    """The entries as CSV, one row each, cells neutralised against formula injection."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for e in items:
        row = {**e.__dict__, "top": "; ".join(f"{s} {p:.3f}" for s, p in e.top),
               "candidates": "; ".join(s for s, _ in e.candidates)}  # fmt: skip
        writer.writerow([safe_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()
