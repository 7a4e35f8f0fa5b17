"""Predict: a photo, or several shots of one fish, in; the answer `fishcore predict --json` gives out; recorded in
the catch log with the device's name when asked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from fishcore.data.images import check_pixels
from fishcore.errors import ImageError
from fishcore.server.errors import ApiError, refusals
from fishcore.server.schemas import PredictOut
from fishcore.server.security import DeviceDep
from fishcore.store.catchlog.checks import check_count, check_place, check_weight
from fishcore.store.model_files import model_checksum

router = APIRouter(prefix="/api/v1", tags=["predict"])


@router.post("/predict", response_model=PredictOut, summary="species, probabilities, verdict, reason and prediction set",
             responses=refusals(401, 413, 422, 429, 503))  # fmt: skip
def predict(
    request: Request,
    device: DeviceDep,
    photos: Annotated[list[UploadFile], File(description="one photo, or several shots of one fish", min_length=1,
                                             max_length=8)],
    together: Annotated[bool, Form(description="the photos show one fish: also give one combined answer")] = False,
    top_k: Annotated[int, Form(ge=1, le=50)] = 3,
    # A form field is absent or a number, never null: typed without None, so the API description offers no null.
    threshold: Annotated[float, Form(ge=0, le=1, description="default: the model's own")] = None,  # noqa: RUF013
    record: Annotated[bool, Form(description="record each answer in the station's catch log")] = False,
    place: Annotated[str, Form(max_length=200)] = "",
    count: Annotated[int, Form(ge=1, le=100_000)] = 1,
    weight_kg: Annotated[float, Form(gt=0, le=100_000, description="with record: their weight, when known")] = None,  # noqa: RUF013
) -> PredictOut:
    station = request.app.state.station
    if not 1 <= len(photos) <= station.config.max_photos:
        raise ApiError(422, "invalid", f"send from 1 to {station.config.max_photos} photos", "photos")
    if record:  # the catch log's own checks, before any photo is looked at
        checks = (("place", check_place, place), ("count", check_count, count), ("weight_kg", check_weight, weight_kg))
        for field, check, value in checks:
            try:
                check(value)
            except Exception as exc:
                raise ApiError(422, "invalid", str(exc), field) from None
    data = [photo.file.read() for photo in photos]
    names = [photo.filename or f"photo {n + 1}" for n, photo in enumerate(photos)]
    for n, photo in enumerate(data):  # each photo's pixels from its header, before anything is decoded
        try:
            check_pixels(photo, station.config.max_pixels)
        except ImageError as exc:
            raise ApiError(422, "bad_photo", f"{names[n]}: {exc}", f"photos[{n}]") from None
    folder, predictor = station.predictor()
    bad: list[tuple[int, ImageError]] = []
    with station.decoding():  # a few photos decoded at once, whoever sends them (this runs in a worker thread)
        results = predictor.predict(data, top_k=top_k, threshold=threshold, names=names,
                                    on_error=lambda n, exc: bad.append((n, exc)))  # fmt: skip
        if bad:
            n, exc = bad[0]
            raise ApiError(422, "bad_photo", f"{names[n]}: {exc}", f"photos[{n}]")
        combined = None
        if together and len(data) > 1:
            combined, _ = predictor.predict_together(data, top_k=top_k, threshold=threshold, names=names)
    checksum = model_checksum(folder)
    entries = []
    if record:
        for photo, p in zip(data, results, strict=True):
            with station.decoding():
                done = station.log.record(photo, predictor.answer(p, threshold), folder.name, checksum, place, count,
                                          weight_kg, session=device.name, device=device.name)  # fmt: skip
            entries.append(done.entry_id)
    return PredictOut(
        photos=[p.to_dict() for p in results],
        together=combined.to_dict() if combined is not None else None,
        entries=entries,
        model=folder.name,
        model_checksum=checksum,
    )
