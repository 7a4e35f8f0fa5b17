"""Sync: a device's entries and photos in, each once however often they are sent; the station's corrections of
the device's entries back out (since=). While the database is away every request here is 503 (fishcore.server.
errors) and nothing is written; the device keeps its entries and sends them again."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from fishcore.server.errors import ApiError, ErrorOut, refusals
from fishcore.server.schemas import SHA256, ChangeOut, ChangesOut, PhotoOut, PhotosIn, PhotosOut, SyncIn, SyncOut
from fishcore.server.security import DeviceDep
from fishcore.store.catchlog.checks import CatchLogError, check_when
from fishcore.store.catchlog.records import Answer
from fishcore.store.catchlog.sync import DeviceEntry, SyncError, Word, changes, receive

router = APIRouter(prefix="/api/v1", tags=["sync"])


class Sha256(Convertor):
    """A photo's address is its sha256: anything else is no photo's address (404), and PUT /photos/missing is a
    method the API does not have (405), not a malformed hash."""

    regex = "[0-9a-f]{64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sha256", Sha256())


@router.post("/photos/missing", response_model=PhotosOut, summary="which of these photos the station does not have",
             responses=refusals(401, 413, 422, 429, 503))  # fmt: skip
def missing(request: Request, body: PhotosIn, _device: DeviceDep) -> PhotosOut:
    have = request.app.state.station.log.has_photos(body.sha256)
    return PhotosOut(missing=[h for h in dict.fromkeys(body.sha256) if h not in have])


@router.put(
    "/photos/{sha256:sha256}",
    response_model=PhotoOut,
    summary="one photo, its body the file's bytes; kept by its hash",
    responses={200: {"description": "the station already had it"}, 201: {"model": PhotoOut, "description": "stored now"},
               404: {"model": ErrorOut, "description": "the address is not a photo's sha256"},
               **refusals(401, 413, 422, 429, 503)},
    openapi_extra={"requestBody": {"required": True, "description": "the photo file's bytes, as they are", "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("image/jpeg", "image/png", "image/webp", "application/octet-stream")}}},
)  # fmt: skip
async def photo(
    request: Request, sha256: Annotated[str, Path(pattern=SHA256)], _device: DeviceDep, response: Response
) -> PhotoOut:
    data = await request.body()
    if not data:
        raise ApiError(422, "invalid", "the body is empty: send the photo's bytes", "body")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ApiError(422, "invalid", "the body's sha256 is not the one in the address (cut off on the way?)", "sha256")
    station = request.app.state.station
    # Decoded in a worker thread, a few at a time (ServerConfig.decoders), never on the event loop: every other
    # request goes on meanwhile. The pixel count is read from the header first.
    stored = await station.off_loop(station.log.keep_photo, data, station.config.max_pixels)
    response.status_code = 201 if stored else 200
    return PhotoOut(sha256=sha256, stored=stored)


@router.post("/sync", response_model=SyncOut, summary="entries made on the device, with every word given on them",
             responses=refusals(401, 413, 422, 429, 503))  # fmt: skip
def sync(request: Request, body: SyncIn, device: DeviceDep) -> SyncOut:
    station = request.app.state.station
    batch = [
        DeviceEntry(
            id=str(e.id), taken_at=e.taken_at, place=e.place, model_name=e.model_name, model_checksum=e.model_checksum,
            photo_sha256=e.photo_sha256,
            answer=Answer(**e.answer.model_dump()),  # the request model's fields are the record's, by name
            count=e.count, weight_kg=e.weight_kg,
            words=tuple(Word(w.word, w.species, w.by or device.name, w.at) for w in e.words),
            session=device.name,
        )
        for e in body.entries
    ]  # fmt: skip
    station.log.flush_spool()  # the station's own answers kept while the database was away, first
    try:
        done = receive(station.log, device.name, batch, station.known_models())
    except SyncError as exc:
        raise ApiError(422, "invalid", exc.reason, exc.where) from None
    return SyncOut(added=done.added, already=done.already, words_added=done.words_added, device=device.name,
                   server_time=datetime.now(UTC))  # fmt: skip


@router.get("/sync/changes", response_model=ChangesOut, summary="the station's later corrections of this device's entries",
            responses=refusals(401, 422, 429, 503))  # fmt: skip
def station_changes(
    request: Request, device: DeviceDep, since: Annotated[datetime | None, Query(description="ISO time, with its zone")] = None
) -> ChangesOut:
    if since is not None:
        try:
            since = check_when(since, "since")
        except CatchLogError as exc:
            raise ApiError(422, "invalid", str(exc), "since") from None
    now = datetime.now(UTC)
    found = changes(request.app.state.station.log, device.name, since)
    return ChangesOut(
        changes=[ChangeOut(id=e.id, word=e.word, species=e.true_species, word_by=e.word_by, word_at=e.word_at, count=e.count,
                           weight_kg=e.weight_kg, updated_at=e.updated_at) for e in found],
        server_time=now,
    )  # fmt: skip
