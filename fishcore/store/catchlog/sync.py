"""Entries made on a device, received by the station; and the station's later corrections, sent back.

An entry belongs to the device that made it: another device sending its id changes nothing, and is answered as
if the entry were new, so the answer does not tell which ids exist (the station's pages and command line can
still correct any entry).

A device makes each entry's id itself (a UUID) and sends entries in batches with the words given on them
(every word, with when and by whom). Receiving is idempotent: an entry already here is left as it is, a word
already here (same entry, word, species and time) is not added again, so a batch sent twice, or cut off half
way and sent again, gives each entry and each word once. A batch is checked whole before anything is
written, and written in one transaction. The photos come first, by content hash (fishcore.store.catchlog.log.
CatchLog.store_photo); an entry whose photo the station does not have is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fishcore.store.catchlog.checks import (
    SESSION_MAX,
    WORDS,
    CatchLogError,
    check_species,
    check_when,
    entry_row,
    plain_text,
)
from fishcore.store.catchlog.engine import insert_ignore, utc, write
from fishcore.store.catchlog.records import Answer, Entry
from fishcore.store.catchlog.schema import entries, feedback, photos


@dataclass(frozen=True)
class Word:
    """A word given on an entry: right, wrong (with the species) or not_fish; by whom and when."""

    word: str
    species: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class DeviceEntry:
    """An entry as a device made it."""

    id: str
    taken_at: datetime
    place: str
    model_name: str
    model_checksum: str
    photo_sha256: str
    answer: Answer
    count: int = 1
    weight_kg: float | None = None
    words: tuple[Word, ...] = ()
    session: str = ""


@dataclass
class Received:
    """What a batch did: entries new here, entries already here, words added."""

    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    words_added: int = 0


class SyncError(CatchLogError):
    """A batch refused whole: ``where`` says which entry and value (entries[3].weight_kg), the message why."""

    code = "bad_sync"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason, what=where)
        self.where = where
        self.reason = reason


def _rows(e: DeviceEntry, device: str, now: datetime) -> tuple[dict, list[dict]]:
    """The entries row and feedback rows of one entry, every value checked (CatchLogError names the value)."""
    feedback_rows = []
    at = [check_when(w.at, "words.at", now) for w in e.words]  # first: an edge of the calendar cannot even be compared
    for w, when in sorted(zip(e.words, at, strict=True), key=lambda pair: pair[1]):
        if w.word not in WORDS:
            raise CatchLogError(f"the word must be one of {', '.join(WORDS)} (not {w.word!r})", what="words.word")
        species = check_species(w.species) if w.word == "wrong" else None
        feedback_rows.append({"entry_id": e.id, "word": w.word, "true_species": species,
                              "word_by": plain_text(w.by, "words.by", SESSION_MAX),
                              "word_at": when})  # fmt: skip
    taken = check_when(e.taken_at, "taken_at", now)
    row = entry_row(e.id, taken, e.answer, e.model_name, e.model_checksum, e.place, e.count, e.weight_kg, e.session, device,
                    now)  # fmt: skip
    row["photo_sha256"] = e.photo_sha256
    latest = feedback_rows[-1] if feedback_rows else {}
    row.update({k: latest.get(k) for k in ("word", "true_species", "word_by", "word_at")})
    return row, feedback_rows


def receive(log, device: str, batch: Sequence[DeviceEntry], known_models: set[str] | None = None) -> Received:
    """Take a device's batch of entries into the log, each once (see the module's docstring).

    ``known_models``: the model checksums this station knows; an entry answered by another is refused.
    Raises SyncError (nothing written) for any bad value, naming it; the database being away is the caller's
    to report (fishcore.store.catchlog.engine.unreachable).
    """
    from sqlalchemy import select

    now = datetime.now(UTC)
    checked = []
    for n, e in enumerate(batch):
        if known_models is not None and e.model_checksum not in known_models:
            raise SyncError(f"entries[{n}].model_checksum", "this station does not know that model version")
        try:
            checked.append(_rows(e, device, now))
        except CatchLogError as exc:
            raise SyncError(f"entries[{n}].{exc.params.get('what', 'entry')}", str(exc)) from None
    ids = [row["id"] for row, _ in checked]
    if len(set(ids)) != len(ids):
        raise SyncError("entries", "the batch holds the same entry id twice")
    shas = {row["photo_sha256"] for row, _ in checked}

    def work(connection) -> Received:
        out = Received()
        have = set(connection.execute(select(photos.c.sha256).where(photos.c.sha256.in_(shas))).scalars())
        for n, (row, _) in enumerate(checked):
            if row["photo_sha256"] not in have:
                raise SyncError(f"entries[{n}].photo_sha256", "the station does not have this photo yet: send it first")
        for row, words in checked:
            if insert_ignore(connection, entries, row):  # the database decides, also against a copy arriving now
                out.added.append(row["id"])
                out.words_added += sum(insert_ignore(connection, feedback, w) for w in words)
                continue
            before = connection.execute(select(entries.c.device, entries.c.word_at).where(entries.c.id == row["id"])).first()
            if before.device != device:
                # Another device's entry, or the station's own: left as it is, and answered as a new entry would be,
                # so the answer does not tell whether the id exists.
                out.added.append(row["id"])
                out.words_added += len(words)
                continue
            out.already.append(row["id"])
            new_words = [w for w in words if insert_ignore(connection, feedback, w)]
            out.words_added += len(new_words)
            if new_words:  # a word given on the phone after an earlier sync
                latest = max(new_words, key=lambda w: w["word_at"])
                if before.word_at is None or utc(before.word_at) < latest["word_at"]:
                    values = {k: latest[k] for k in ("word", "true_species", "word_by", "word_at")}
                    connection.execute(entries.update().where(entries.c.id == row["id"]).values(**values, updated_at=now))
        return out

    return write(log.database(), work)


def changes(log, device: str, since: datetime | None) -> list[Entry]:
    """The device's entries changed at the station after ``since`` (a word, a count, a weight), oldest change
    first; with no ``since``, all of them."""
    from sqlalchemy import select

    query = select(entries.c.id).where(entries.c.device == device)
    if since is not None:
        query = query.where(entries.c.updated_at > utc(since))
    with log.database().connect() as connection:
        ids = list(connection.execute(query.order_by(entries.c.updated_at)).scalars())
    found = [log.get(i) for i in ids]
    return [e for e in found if e is not None]
