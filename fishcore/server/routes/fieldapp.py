"""The field app (fieldapp/ in the project): its few files served from the station's own origin, so a phone that
opened it once has it offline (its service worker caches them). Only the app's own files are served."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from fishcore.server.errors import ApiError

FIELD_APP = Path(__file__).resolve().parents[3] / "fieldapp"
TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
    ".png": "image/png", ".wasm": "application/wasm",
}  # fmt: skip
# The one list of the app's files: the service worker caches these (sw.js gets it when served), and ./run.sh copies
# VENDOR from onnxruntime-web's npm package.
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


@cache
def _worker(stamp: tuple) -> bytes:
    """sw.js with the shell's file list and a cache name that follows the contents of every file it caches: a new
    app or runtime reaches phones that have the old one (the service worker sees itself change, and the old cache
    is dropped)."""
    digest = hashlib.sha256()
    for folder, names in ((FIELD_APP, SHELL), (FIELD_APP / "vendor", VENDOR)):
        for name in names:
            path = folder / name
            if name != "sw.js" and path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes())
    files = ["./", *[f"./{n}" for n in SHELL if n != "sw.js"], *[f"./vendor/{n}" for n in VENDOR]]
    text = (FIELD_APP / "sw.js").read_text(encoding="utf-8")
    return text.replace("__VERSION__", digest.hexdigest()[:16]).replace('"__FILES__"', json.dumps(files)).encode()


@router.get("/sw.js")
def service_worker() -> Response:
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in [*(FIELD_APP / n for n in SHELL), *(FIELD_APP / "vendor" / n
                  for n in VENDOR)] if p.is_file())  # fmt: skip
    return Response(_worker(stamp), media_type=TYPES[".js"], headers={"Cache-Control": "no-cache"})


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
