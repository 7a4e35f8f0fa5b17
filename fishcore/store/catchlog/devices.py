"""The devices a station lets in: one token per phone or landing site, kept only as its sha256.

`fishcore serve token add "Muara Angke"` makes a token and shows it once; the field server takes it as
`Authorization: Bearer <token>`, finds the device by the token's hash and records the device's name on every
entry it sends. A revoked token lets nothing in again. The table lives in the catch log's database, so the
landing sites of one office that share a PostgreSQL log share their devices too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fishcore.store.catchlog.checks import CatchLogError, plain_text
from fishcore.store.catchlog.engine import utc, write
from fishcore.store.catchlog.schema import devices

DEVICE_NAME_MAX = 100
SEEN_EVERY = timedelta(minutes=1)  # how often a device's last_seen is written


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_seen: datetime | None = None
    model_checksum: str | None = None  # the model version it last took from the station
    model_at: datetime | None = None
    entries: int = 0  # entries it sent (filled by Devices.list)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _device(row) -> Device:
    r = dict(row._mapping)
    return Device(r["id"], r["name"], utc(r["created_at"]), utc(r["revoked_at"]), utc(r["last_seen"]),
                  r.get("model_checksum"), utc(r.get("model_at")))  # fmt: skip


class Devices:
    """The devices of one catch log (its database)."""

    def __init__(self, log) -> None:
        self.log = log

    def add(self, name: str) -> tuple[Device, str]:
        """A new device and its token (shown once: only its hash is kept). Names are unique among active devices."""
        from sqlalchemy import select

        name = plain_text(name, "device name", DEVICE_NAME_MAX, required=True)
        token = secrets.token_urlsafe(32)
        row = {"id": str(uuid.uuid4()), "name": name, "token_sha256": token_hash(token), "created_at": datetime.now(UTC)}
        with self.log.database().begin() as connection:
            taken = connection.execute(
                select(devices.c.id).where(devices.c.name == name, devices.c.revoked_at.is_(None))
            ).first()
            if taken is not None:
                raise CatchLogError(f"a device named {name!r} already has a token; revoke it first", what="device name")
            connection.execute(devices.insert().values(**row))
        return Device(row["id"], name, row["created_at"]), token

    def list(self) -> list[Device]:
        """Every device, oldest first, with how many entries each sent."""
        from dataclasses import replace

        from sqlalchemy import func, select

        from fishcore.store.catchlog.schema import entries

        with self.log.database().connect() as connection:
            rows = [_device(r) for r in connection.execute(select(devices).order_by(devices.c.created_at))]
            sent = dict(connection.execute(
                select(entries.c.device, func.count()).where(entries.c.device.is_not(None)).group_by(entries.c.device)
            ).all())  # fmt: skip
        return [replace(d, entries=sent.get(d.name, 0)) for d in rows]

    def took_model(self, device_id: str, checksum: str) -> None:
        """Remember which model version a device now holds (it downloaded it, or was told its copy is current)."""
        from sqlalchemy import or_

        query = (
            devices.update()
            .where(devices.c.id == device_id, or_(devices.c.model_checksum.is_(None), devices.c.model_checksum != checksum))
            .values(model_checksum=checksum, model_at=datetime.now(UTC))
        )
        write(self.log.database(), lambda c: c.execute(query))

    def revoke(self, name_or_id: str) -> Device:
        """Revoke the active device with this name (or id); its token lets nothing in from now on."""
        from sqlalchemy import or_, select

        with self.log.database().begin() as connection:
            named = or_(devices.c.name == name_or_id, devices.c.id == name_or_id)
            row = connection.execute(select(devices).where(named, devices.c.revoked_at.is_(None))).first()
            if row is None:
                raise CatchLogError(f"no active device {name_or_id!r} (`fishcore serve token list` shows them)", what="device")
            connection.execute(devices.update().where(devices.c.id == row.id).values(revoked_at=datetime.now(UTC)))
        return _device(row)

    def verify(self, token: str | None) -> Device | None:
        """The active device whose token this is, or None (also for no token at all)."""
        from sqlalchemy import select

        if not token:
            return None
        digest = token_hash(token)
        with self.log.database().connect() as connection:
            row = connection.execute(select(devices).where(devices.c.token_sha256 == digest)).first()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        now = datetime.now(UTC)
        seen = utc(row.last_seen)
        if seen is None or now - seen > SEEN_EVERY:  # a write a minute at most, not one per request
            write(self.log.database(), lambda c: c.execute(devices.update().where(devices.c.id == row.id).values(last_seen=now)))
        return _device(row)
