"""CatchLog: reading and writing one workspace's catch log (its database, its photo folder and its spool).

Nothing is dropped silently: when the configured database cannot be reached, an entry goes to a local
SQLite spool beside the photos and is written to the database (``flush_spool``) once it is back. Each
entry has an id made where it was made (a UUID), so an entry written twice is still one entry. Photos are
kept by content hash (the same photo twice is stored once), written whole before the entry that names them.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fishcore.settings import Paths, db_url
from fishcore.store.catchlog.checks import (
    SESSION_MAX,
    WORDS,
    CatchLogError,
    check_count,
    check_species,
    check_weight,
    entry_row,
    plain_text,
)
from fishcore.store.catchlog.engine import engine_for, insert_ignore, migrate, unreachable, utc, write
from fishcore.store.catchlog.records import Answer, Entry, LogFilter, Recorded
from fishcore.store.catchlog.schema import entries, feedback, photos

_SHA = re.compile(r"[0-9a-f]{64}")


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
        return engine_for(url)

    def database(self) -> Any:
        """The engine of the configured database (migrated on first use); for the modules beside this one."""
        return self._prepare(self.url)

    # --- photos --------------------------------------------------------------------------------

    def store_photo(self, data: bytes, max_pixels: int | None = None) -> dict:
        """Keep the photo under its content hash (whole, or not at all); its photos-table row. ``max_pixels``: a
        photo larger than this is refused from its header, before it is decoded."""
        import hashlib

        from PIL import Image

        from fishcore.data.images import load_image

        image = load_image(data, max_pixels=max_pixels)  # raises ImageError with the reason for anything unreadable
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
        from fishcore.data.phash import perceptual_hash

        return {"sha256": sha, "file": rel, "width": image.width, "height": image.height, "bytes": len(data),
                "stored_at": datetime.now(UTC), "phash": f"{perceptual_hash(image):016x}"}  # fmt: skip

    def keep_photo(self, data: bytes, max_pixels: int | None = None) -> bool:
        """A photo sent on its own (a device's sync): stored by its hash with its row, whole; False when already here."""
        row = self.store_photo(data, max_pixels)
        return write(self.database(), lambda connection: insert_ignore(connection, photos, row))

    def has_photos(self, shas: Iterable[str]) -> set[str]:
        """Which of these photos (by content hash) the database has."""
        from sqlalchemy import select

        wanted = list(dict.fromkeys(shas))
        with self.database().connect() as connection:
            return set(connection.execute(select(photos.c.sha256).where(photos.c.sha256.in_(wanted))).scalars())

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
        device: str | None = None,
    ) -> Recorded:
        """Record one answer; every value is checked first and a bad one writes nothing (CatchLogError, ImageError).
        ``device``: the device that sent the photo (the field server's predict), None for this station's own."""
        now = datetime.now(UTC)
        row = entry_row(str(uuid.uuid4()), utc(when) or now, answer, model_name, model_checksum, place, count, weight_kg,
                        session, device, now)  # fmt: skip
        photo_row = self.store_photo(photo)
        row["photo_sha256"] = photo_row["sha256"]
        try:
            self._insert(self.url, [photo_row], [row])
            return Recorded(row["id"], spooled=False)
        except Exception as exc:
            if not unreachable(exc):
                raise
        self._insert(self.spool_url, [photo_row], [row])  # the database is away: keep it here meanwhile
        return Recorded(row["id"], spooled=True)

    def _insert(self, url: str, photo_rows: list[dict], entry_rows: list[dict], feedback_rows: Iterable[dict] = ()) -> None:
        feedback_rows = list(feedback_rows)

        def work(connection) -> None:
            for p in photo_rows:
                insert_ignore(connection, photos, p)
            for e in entry_rows:
                insert_ignore(connection, entries, e)
            for f in feedback_rows:
                insert_ignore(connection, feedback, f)

        write(self._prepare(url), work)

    def set_word(self, entry_id: str, word: str, species: str | None = None, who: str = "", when: datetime | None = None) -> None:
        """The user's word on an entry: right, wrong (with the species it is: known or new) or not_fish.

        It can be changed later; every word is kept (feedback) and the latest is the entry's.
        """
        if word not in WORDS:
            raise CatchLogError(f"the word must be one of {', '.join(WORDS)} (not {word!r})", what="word")
        true_species = check_species(species) if word == "wrong" else None
        if word == "wrong" and not true_species:
            raise CatchLogError("say which species it is", what="species")
        values = {"word": word, "true_species": true_species, "word_by": plain_text(who, "name", SESSION_MAX),
                  "word_at": utc(when) or datetime.now(UTC)}  # fmt: skip
        self.flush_spool()  # an entry still in the spool gets its word where it will live

        def change(connection) -> None:
            connection.execute(entries.update().where(entries.c.id == entry_id).values(**values, updated_at=datetime.now(UTC)))
            connection.execute(feedback.insert().values(entry_id=entry_id, **values))

        self._change(entry_id, change)

    def _change(self, entry_id: str, change) -> None:
        """Apply change(connection) to the entry where it lives: the database, else the spool."""
        from sqlalchemy import select

        away = False
        for url in (self.url, self.spool_url):
            def work(connection) -> bool:
                if connection.execute(select(entries.c.id).where(entries.c.id == entry_id)).first() is None:
                    return False
                change(connection)
                return True

            try:
                if write(self._prepare(url), work):
                    return
            except Exception as exc:
                if url == self.url and unreachable(exc):
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
        values = {"count": check_count(count), "weight_kg": check_weight(weight_kg), "updated_at": datetime.now(UTC)}
        self.flush_spool()
        self._change(
            entry_id, lambda connection: connection.execute(entries.update().where(entries.c.id == entry_id).values(**values))
        )

    def mark_taught(self, entry_ids: list[str], dataset: str, when: datetime | None = None) -> None:
        """Record that these entries' photos went into a My photos dataset (so they are not taught twice)."""
        at = utc(when) or datetime.now(UTC)
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
            if unreachable(exc):
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
            if url == self.url and unreachable(exc):
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
                if url == self.url and unreachable(exc):
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


def _entry(row: dict) -> Entry:
    top = [(str(s), float(p)) for s, p in json.loads(row["top"])]
    candidates = [(str(s), float(p)) for s, p in json.loads(row["candidates"])] if row.get("candidates") else []
    skip = ("top", "candidates", "photo_file", "phash")
    fields_ = {k: row[k] for k in Entry.__dataclass_fields__ if k in row and k not in skip}
    entry = Entry(**fields_, top=top, candidates=candidates, photo_file=row.get("file", ""), phash=row.get("phash"))
    entry.created_at, entry.word_at, entry.taught_at = utc(entry.created_at), utc(entry.word_at), utc(entry.taught_at)
    entry.updated_at = utc(entry.updated_at)
    return entry
