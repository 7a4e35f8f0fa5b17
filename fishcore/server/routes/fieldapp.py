"""The field app (fieldapp/ in the project): its few files served from the station's own origin, so a phone that
opened it once has it offline (its service worker caches them). Only the app's own files are served."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from fishcore.server.errors import ApiError

FIELD_APP = Path(__file__).resolve().parents[3] / "fieldapp"
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
    ".png": "image/png", ".wasm": "application/wasm",
}  # fmt: skip
SHELL = ("index.html", "app.js", "core.js", "i18n.js", "model.js", "store.js", "sync.js", "style.css", "sw.js",
         "manifest.webmanifest", "icon.svg", "icon-192.png", "icon-512.png")  # fmt: skip
VENDOR = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")

MISSING_RUNTIME = (
    "the field app's model runtime is not installed on this station: run ./run.sh once (it fetches onnxruntime-web "
    "as fieldapp/package-lock.json pins it)"
)
router = APIRouter(include_in_schema=False)


def _file(path: Path) -> FileResponse:
    if not path.is_file():
        raise ApiError(404, "not_found", MISSING_RUNTIME if path.parent.name == "vendor" else "not found")
    headers = {"Cache-Control": "no-cache"} if path.parent.name != "vendor" else {"Cache-Control": "public, max-age=604800"}
    return FileResponse(path, media_type=TYPES.get(path.suffix, "application/octet-stream"), headers=headers)


@router.get("/")
def index() -> FileResponse:
    return _file(FIELD_APP / "index.html")


@router.get("/vendor/{name}")
def vendor(name: str) -> FileResponse:
    if name not in VENDOR:
        raise ApiError(404, "not_found", "not found")
    return _file(FIELD_APP / "vendor" / name)


@router.get("/{name}")
def shell(name: str) -> FileResponse:
    if name not in SHELL:
        raise ApiError(404, "not_found", "not found")
    return _file(FIELD_APP / name)
