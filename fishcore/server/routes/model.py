"""The active model: what it is, and one download with everything a client needs to answer without the station."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fishcore.server.errors import refusals
from fishcore.server.schemas import HaveIn, ModelOut
from fishcore.server.security import Device, OpenDeviceDep

router = APIRouter(prefix="/api/v1/model", tags=["model"])


@router.get("", response_model=ModelOut, summary="the active model: name, version, checksum, species, promise",
            responses=refusals(401, 422, 429, 503))  # fmt: skip
def model(request: Request, _device: OpenDeviceDep) -> ModelOut:
    package = request.app.state.station.package()
    m = package.meta
    return ModelOut(
        name=m["name"], folder=m["folder"], version=m["version"], checksum=m["checksum"], package=package.etag,
        classes=m["classes"], species=m["species"], threshold=m["threshold"], promise=m["promise"],
        prediction_sets=m["prediction_sets"], download=str(request.url_for("download")),
    )  # fmt: skip


_PACKAGE_RESPONSES = {
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the model package", "headers": {"ETag": {"schema": {"type": "string"}}}},
    304: {"description": "the client's copy is this version"},
}  # fmt: skip


@router.get(
    "/download",
    name="download",
    summary="model.onnx (probabilities, distance, fish-likeness), its weights' parts (parts/SHA256) and model.json "
    "(preprocessing, thresholds, set rule, species cards), zipped; cacheable by its ETag",
    responses={**_PACKAGE_RESPONSES, **refusals(401, 422, 429, 503)},
    response_class=Response,
)
def download(request: Request, device: OpenDeviceDep) -> Response:
    return _package_response(request, device, frozenset())


@router.post(
    "/update",
    summary="an update: the same package without the parts the device already keeps (the frozen trunk's weights are "
    "the same in every version)",
    responses={**_PACKAGE_RESPONSES, **refusals(401, 413, 422, 429, 503)},
    response_class=Response,
)
def update(request: Request, body: HaveIn, device: OpenDeviceDep) -> Response:
    return _package_response(request, device, frozenset(body.have))


def _package_response(request: Request, device: Device | None, have: frozenset[str]) -> Response:
    station = request.app.state.station
    package = station.package()
    etag = f'"{package.etag}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Model-Checksum": package.meta["checksum"]}
    wanted = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if device is not None:  # the Phones page says which phones have the active model
        station.took_model(device, package.meta["checksum"])
    if etag in wanted or package.etag in wanted:
        return Response(status_code=304, headers=headers)
    name = f"{package.meta['folder']}-{package.meta['checksum'][:8]}.zip"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(package.without(have) if have else package.data, media_type="application/zip", headers=headers)
