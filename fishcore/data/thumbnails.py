"""Thumbnails for the pages: a JPEG per photo and size, cached on disk and rebuilt when the photo changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image

from fishcore.data.images import load_image


def thumbnail(path: str | os.PathLike, size: int, cache_dir: str | os.PathLike) -> Path:
    """A JPEG thumbnail (longest side ``size``) cached on disk, rebuilt when the photo changes."""
    path = Path(path)
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}".encode()).hexdigest()
    out = Path(cache_dir) / key[:2] / f"{key}.jpg"
    if not out.is_file():
        img = load_image(path, min_size=size)
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        img.save(tmp, "JPEG", quality=85)
        os.replace(tmp, out)
    return out
