"""The catch log: every answer Predict (or `predict --log`) gives, with the photo and the user's word on it.

A real database through SQLAlchemy Core: SQLite in the workspace by default (one file, WAL mode, made
on first use), or PostgreSQL for an office where several app servers or landing sites share one log
(``FISHCORE_DB_URL``, psycopg 3). The schema is versioned and migrated with Alembic
(``migrations/versions``), from an empty database or from any earlier version.

Nothing is dropped silently: when the configured database cannot be reached, an entry goes to a local
SQLite spool beside the photos and is written to the database (``flush_spool``) once it is back. Each
entry has an id made here (a UUID), so an entry written twice is still one entry. Photos are kept by
content hash (the same photo twice is stored once), written whole before the entry that names them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fishcore.errors import FishcoreError
from fishcore.settings import Paths, db_url
from fishcore.store.catchlog.schema import entries, feedback, photos

WORDS = ("right", "wrong", "not_fish")  # the user's word on an answer
VERDICT_CODES = ("confident", "uncertain", "not_a_fish")
PLACE_MAX, SESSION_MAX, SPECIES_MAX = 200, 100, 100
COUNT_MAX, WEIGHT_MAX_KG = 100_000, 100_000.0
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0004"
_SHA = re.compile(r"[0-9a-f]{64}")


class CatchLogError(FishcoreError):
    """A catch log entry or change that cannot be recorded as given (the message says which value and why)."""

    code = "bad_log_entry"


# --- checks on what a user types ---------------------------------------------------------------


def _plain_text(value: Any, what: str, limit: int, required: bool = False) -> str:
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
    return _plain_text(value, "place", PLACE_MAX)


def check_species(value: Any) -> str:
    """A species name as a user types it: a plain name that can also be a folder (no '/', '\\', leading dot)."""
    name = _plain_text(value, "species name", SPECIES_MAX, required=True)
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


# --- what is recorded --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One answer as Predict gave it: the species, how sure, the verdict and its reason, the runners-up."""

    label: str
    confidence: float
    verdict: str
    reason: str
    top: list[tuple[str, float]]
    distance: float | None = None  # to the nearest training photo (cosine), when the model has a profile
    distance_threshold: float | None = None  # beyond it the photo is "unfamiliar"
    candidates: list[tuple[str, float]] = field(default_factory=list)  # the prediction set, most probable first
    set_coverage: float | None = None  # how often such a set holds the right species
    threshold: float | None = None  # the confidence threshold the verdict used


@dataclass(frozen=True)
class Recorded:
    """What record() did: the entry's id, and whether it waits in the spool for the database."""

    entry_id: str
    spooled: bool


@dataclass
class LogFilter:
    """Which entries to show or export; every part is optional."""

    since: date | None = None
    until: date | None = None  # inclusive
    species: str | None = None  # the answer's species, or the species the user said it is
    verdict: str | None = None
    confirmed: bool | None = None  # True: the user gave a word; False: not yet
    place: str | None = None
    model: str | None = None  # model name
    limit: int | None = None


@dataclass
class Entry:
    """An entry as read back, with the user's latest word (None when there is none yet)."""

    id: str
    created_at: datetime
    place: str
    session: str
    model_name: str
    model_checksum: str
    photo_sha256: str
    top: list[tuple[str, float]]
    label: str
    confidence: float
    verdict: str
    reason: str
    count: int
    weight_kg: float | None
    word: str | None = None
    true_species: str | None = None
    word_by: str | None = None
    word_at: datetime | None = None
    distance: float | None = None
    distance_threshold: float | None = None
    taught_to: str | None = None
    taught_at: datetime | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    set_coverage: float | None = None
    threshold: float | None = None
    photo_file: str = ""
    phash: str | None = None

    @property
    def species(self) -> str:
        """What the fish is, as far as anyone knows: the user's word when given, else the model's answer."""
        if self.word == "wrong" and self.true_species:
            return self.true_species
        return "" if self.word == "not_fish" else self.label

    @property
    def right(self) -> bool | None:
        """Was the model right, by the user's word (None: no word yet)."""
        if self.word is None:
            return None
        return self.word == "right" or (self.word == "wrong" and self.true_species == self.label)


# --- the database ------------------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str):
    """One engine per URL per process (a pool that sessions and threads share)."""
    from sqlalchemy import create_engine, event

    with _ENGINES_LOCK:
        if url not in _ENGINES:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

                @event.listens_for(engine, "connect")
                def _pragmas(dbapi_connection, _record) -> None:
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: a killed app loses no committed entry
                    cursor.execute("PRAGMA foreign_keys=ON")
                    cursor.execute("PRAGMA busy_timeout=30000")
                    cursor.close()

            else:
                engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
            _ENGINES[url] = engine
        return _ENGINES[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests that stop a server, a process about to fork)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at url to ``revision`` of the catch log's schema (made if empty)."""
    from alembic import command
    from alembic.config import Config

    engine = _engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def schema_version(url: str) -> str | None:
    """The Alembic revision the database is at (None: not a catch log yet)."""
    from alembic.runtime.migration import MigrationContext

    with _engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _unreachable(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CatchLog:
    """The log of one workspace: its database, its photo folder and its spool."""

    def __init__(self, url: str | None = None, folder: str | os.PathLike | None = None) -> None:
        paths = Paths.from_env()
        self.folder = Path(folder) if folder else paths.catchlog
        self.photos = self.folder / "photos"
        self.url = url or db_url() or f"sqlite:///{self.folder / 'catchlog.sqlite'}"
        self.spool_url = f"sqlite:///{self.folder / 'spool.sqlite'}"
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"

    def _prepare(self, url: str) -> Any:
        """The engine of url, its schema migrated on first use in this process."""
        if url.startswith("sqlite"):
            self.folder.mkdir(parents=True, exist_ok=True)
        if url not in self._ready:
            with self._lock:
                if url not in self._ready:
                    migrate(url)
                    self._ready.add(url)
        return _engine(url)

    # --- photos --------------------------------------------------------------------------------

    def store_photo(self, data: bytes) -> dict:
        """Keep the photo under its content hash (whole, or not at all); its photos-table row."""
        import hashlib

        from PIL import Image

        from fishcore.data.scan import load_image

        image = load_image(data)  # raises ImageError with the reason for anything unreadable
        sha = hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as original:
            kind = original.format or ""
        suffix = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}.get(kind, ".img")
        rel = f"{sha[:2]}/{sha}{suffix}"
        path = self.photos / rel
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        from fishcore.data.scan import perceptual_hash

        return {"sha256": sha, "file": rel, "width": image.width, "height": image.height, "bytes": len(data),
                "stored_at": datetime.now(UTC), "phash": f"{perceptual_hash(image):016x}"}  # fmt: skip

    def photo_path(self, sha256: str) -> Path:
        """The stored photo of an entry; never a file outside the log's photo folder."""
        sha = str(sha256).lower()
        if not _SHA.fullmatch(sha):
            raise CatchLogError(f"{sha256!r} is not a photo's content hash", what="photo")
        root = self.photos.resolve()
        for path in (self.photos / sha[:2]).glob(f"{sha}.*"):
            resolved = path.resolve()
            if resolved.is_relative_to(root) and resolved.is_file():
                return resolved
        raise CatchLogError(f"no stored photo {sha[:12]}...", what="photo")

    # --- writing -------------------------------------------------------------------------------

    def record(
        self,
        photo: bytes,
        answer: Answer,
        model_name: str,
        model_checksum: str,
        place: str = "",
        count: Any = 1,
        weight_kg: Any = None,
        session: str = "",
        when: datetime | None = None,
    ) -> Recorded:
        """Record one answer; every value is checked first and a bad one writes nothing (CatchLogError, ImageError)."""
        if answer.verdict not in VERDICT_CODES:
            raise CatchLogError(f"unknown verdict {answer.verdict!r}", what="verdict")
        row = {
            "id": str(uuid.uuid4()),
            "created_at": _utc(when) or datetime.now(UTC),
            "place": check_place(place),
            "session": _plain_text(session, "session label", SESSION_MAX),
            "model_name": _plain_text(model_name, "model name", 200, required=True),
            "model_checksum": str(model_checksum)[:64],
            "top": json.dumps([[str(s), float(p)] for s, p in answer.top]),
            "label": str(answer.label),
            "confidence": float(answer.confidence),
            "verdict": answer.verdict,
            "reason": str(answer.reason),
            "count": check_count(count),
            "weight_kg": check_weight(weight_kg),
            "distance": None if answer.distance is None else float(answer.distance),
            "distance_threshold": None if answer.distance_threshold is None else float(answer.distance_threshold),
            "candidates": json.dumps([[str(s), float(p)] for s, p in answer.candidates]) if answer.candidates else None,
            "set_coverage": _fraction(answer.set_coverage, "set coverage"),
            "threshold": _fraction(answer.threshold, "threshold"),
        }
        photo_row = self.store_photo(photo)
        row["photo_sha256"] = photo_row["sha256"]
        try:
            self._insert(self.url, [photo_row], [row])
            return Recorded(row["id"], spooled=False)
        except Exception as exc:
            if not _unreachable(exc):
                raise
        self._insert(self.spool_url, [photo_row], [row])  # the database is away: keep it here meanwhile
        return Recorded(row["id"], spooled=True)

    def _insert(self, url: str, photo_rows: list[dict], entry_rows: list[dict], feedback_rows: Iterable[dict] = ()) -> None:
        from sqlalchemy import select

        engine = self._prepare(url)
        with engine.begin() as connection:
            for p in photo_rows:
                if connection.execute(select(photos.c.sha256).where(photos.c.sha256 == p["sha256"])).first() is None:
                    connection.execute(photos.insert().values(**p))
            for e in entry_rows:
                if connection.execute(select(entries.c.id).where(entries.c.id == e["id"])).first() is None:
                    connection.execute(entries.insert().values(**e))
            for f in feedback_rows:
                connection.execute(feedback.insert().values(**f))

    def set_word(self, entry_id: str, word: str, species: str | None = None, who: str = "", when: datetime | None = None) -> None:
        """The user's word on an entry: right, wrong (with the species it is: known or new) or not_fish.

        It can be changed later; every word is kept (feedback) and the latest is the entry's.
        """
        if word not in WORDS:
            raise CatchLogError(f"the word must be one of {', '.join(WORDS)} (not {word!r})", what="word")
        true_species = check_species(species) if word == "wrong" else None
        if word == "wrong" and not true_species:
            raise CatchLogError("say which species it is", what="species")
        values = {"word": word, "true_species": true_species, "word_by": _plain_text(who, "name", SESSION_MAX),
                  "word_at": _utc(when) or datetime.now(UTC)}  # fmt: skip
        self.flush_spool()  # an entry still in the spool gets its word where it will live

        def change(connection) -> None:
            connection.execute(entries.update().where(entries.c.id == entry_id).values(**values))
            connection.execute(feedback.insert().values(entry_id=entry_id, **values))

        self._change(entry_id, change)

    def _change(self, entry_id: str, change) -> None:
        """Apply change(connection) to the entry where it lives: the database, else the spool."""
        from sqlalchemy import select

        away = False
        for url in (self.url, self.spool_url):
            try:
                with self._prepare(url).begin() as connection:
                    if connection.execute(select(entries.c.id).where(entries.c.id == entry_id)).first() is not None:
                        change(connection)
                        return
            except Exception as exc:
                if url == self.url and _unreachable(exc):
                    away = True
                    continue
                raise
        if away:
            raise CatchLogError(
                f"the catch log database cannot be reached ({self.describe()}); nothing was changed, try again when it is back",
                what="database",
            )
        raise CatchLogError(f"no catch log entry {entry_id!r}", what="entry")

    def set_amount(self, entry_id: str, count: Any = 1, weight_kg: Any = None) -> None:
        """How many fish an entry counts and what they weigh (checked like record's)."""
        values = {"count": check_count(count), "weight_kg": check_weight(weight_kg)}
        self.flush_spool()
        self._change(
            entry_id, lambda connection: connection.execute(entries.update().where(entries.c.id == entry_id).values(**values))
        )

    def mark_taught(self, entry_ids: list[str], dataset: str, when: datetime | None = None) -> None:
        """Record that these entries' photos went into a My photos dataset (so they are not taught twice)."""
        at = _utc(when) or datetime.now(UTC)
        with self._prepare(self.url).begin() as connection:
            connection.execute(entries.update().where(entries.c.id.in_(entry_ids)).values(taught_to=dataset, taught_at=at))

    # --- the spool -----------------------------------------------------------------------------

    def pending(self) -> int:
        """Entries waiting in the spool for the database."""
        if not (self.folder / "spool.sqlite").is_file():
            return 0
        from sqlalchemy import func, select

        with self._prepare(self.spool_url).connect() as connection:
            return int(connection.execute(select(func.count()).select_from(entries)).scalar_one())

    def flush_spool(self) -> int:
        """Write what the spool holds to the database; the number of entries written (0 while it is away)."""
        if self.pending() == 0:
            return 0
        from sqlalchemy import select

        spool = self._prepare(self.spool_url)
        with spool.connect() as connection:
            entry_rows = [dict(r._mapping) for r in connection.execute(select(entries))]
            shas = {e["photo_sha256"] for e in entry_rows}
            photo_rows = [dict(r._mapping) for r in connection.execute(select(photos).where(photos.c.sha256.in_(shas)))]
            feedback_rows = [
                {k: v for k, v in dict(r._mapping).items() if k != "id"} for r in connection.execute(select(feedback))
            ]
        try:
            self._insert(self.url, photo_rows, entry_rows, feedback_rows)
        except Exception as exc:
            if _unreachable(exc):
                return 0
            raise
        with spool.begin() as connection:  # written: forget them here (an entry re-sent later is skipped by id)
            ids = [e["id"] for e in entry_rows]
            connection.execute(feedback.delete().where(feedback.c.entry_id.in_(ids)))
            connection.execute(entries.delete().where(entries.c.id.in_(ids)))
            connection.execute(photos.delete().where(photos.c.sha256.in_(shas)))
        return len(entry_rows)

    # --- reading -------------------------------------------------------------------------------

    def entries(self, filters: LogFilter | None = None) -> list[Entry]:
        """Entries newest first, filtered; those still in the spool are included."""
        out = self._read(self.url, filters)
        if self.pending():
            seen = {e.id for e in out}
            out += [e for e in self._read(self.spool_url, filters) if e.id not in seen]
            out.sort(key=lambda e: e.created_at, reverse=True)
        return out

    def _read(self, url: str, filters: LogFilter | None) -> list[Entry]:
        from sqlalchemy import or_, select

        f = filters or LogFilter()
        query = select(entries, photos.c.file, photos.c.phash).join(photos, photos.c.sha256 == entries.c.photo_sha256)
        if f.since:
            query = query.where(entries.c.created_at >= datetime.combine(f.since, time.min, UTC))
        if f.until:
            query = query.where(entries.c.created_at < datetime.combine(f.until + timedelta(days=1), time.min, UTC))
        if f.species:
            query = query.where(or_(entries.c.label == f.species, entries.c.true_species == f.species))
        if f.verdict:
            query = query.where(entries.c.verdict == f.verdict)
        if f.confirmed is not None:
            query = query.where(entries.c.word.is_not(None) if f.confirmed else entries.c.word.is_(None))
        if f.place:
            query = query.where(entries.c.place == f.place)
        if f.model:
            query = query.where(entries.c.model_name == f.model)
        query = query.order_by(entries.c.created_at.desc(), entries.c.id)
        if f.limit:
            query = query.limit(f.limit)
        try:
            engine = self._prepare(url)
            with engine.connect() as connection:
                rows = [dict(r._mapping) for r in connection.execute(query)]
        except Exception as exc:
            if url == self.url and _unreachable(exc):
                raise CatchLogError(f"the catch log database cannot be reached ({self.describe()})", what="database") from None
            raise
        return [_entry(r) for r in rows]

    def get(self, entry_id: str) -> Entry | None:
        """One entry by its id (also one still in the spool), or None."""
        from sqlalchemy import select

        query = (
            select(entries, photos.c.file, photos.c.phash)
            .join(photos, photos.c.sha256 == entries.c.photo_sha256)
            .where(entries.c.id == entry_id)
        )
        for url in (self.url, self.spool_url):
            if url == self.spool_url and not self.pending():
                break
            try:
                with self._prepare(url).connect() as connection:
                    row = connection.execute(query).first()
            except Exception as exc:
                if url == self.url and _unreachable(exc):
                    continue  # away: the entry may be in the spool
                raise
            if row is not None:
                return _entry(dict(row._mapping))
        return None

    def history(self, entry_id: str) -> list[dict]:
        """Every word given on an entry, oldest first."""
        from sqlalchemy import select

        with self._prepare(self.url).connect() as connection:
            query = select(feedback).where(feedback.c.entry_id == entry_id).order_by(feedback.c.id)
            return [dict(r._mapping) for r in connection.execute(query)]

    def describe(self) -> str:
        """Where the log lives, for people (no password)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


def _fraction(value: float | None, what: str) -> float | None:
    """A probability-like value (0-1) as stored, or None."""
    if value is None:
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise CatchLogError(f"{what} must be from 0 to 1 (got {value!r})", what=what)
    return number


def _entry(row: dict) -> Entry:
    top = [(str(s), float(p)) for s, p in json.loads(row["top"])]
    candidates = [(str(s), float(p)) for s, p in json.loads(row["candidates"])] if row.get("candidates") else []
    skip = ("top", "candidates", "photo_file", "phash")
    fields_ = {k: row[k] for k in Entry.__dataclass_fields__ if k in row and k not in skip}
    entry = Entry(**fields_, top=top, candidates=candidates, photo_file=row.get("file", ""), phash=row.get("phash"))
    entry.created_at, entry.word_at, entry.taught_at = _utc(entry.created_at), _utc(entry.word_at), _utc(entry.taught_at)
    return entry


# --- summaries and export ----------------------------------------------------------------------


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


FIELD_TEST_EVERY = 5  # every fifth confirmed photo, by content hash, is never taught (queue.py)


def is_field_test(photo_sha256: str) -> bool:
    """Whether a photo belongs to the field test set (fixed by its content hash)."""
    return int(photo_sha256[:8], 16) % FIELD_TEST_EVERY == 0


def used_as(e: Entry) -> str:
    """What an entry is to training: 'field test' (never taught), 'taught' (training data) or 'not taught yet'."""
    return "field test" if is_field_test(e.photo_sha256) else "taught" if e.taught_to else "not taught yet"


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
    "set_coverage", "threshold",
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


def model_checksum(card_file: str | os.PathLike) -> str:
    """The sha256 of a model's card.json: which version of the model gave an answer."""
    import hashlib

    return hashlib.sha256(Path(card_file).read_bytes()).hexdigest()
