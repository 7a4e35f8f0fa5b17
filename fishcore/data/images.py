"""Decoding: any photo file, bytes or stream to an upright RGB image, or an ImageError that says what the file is
and what to do (a HEIC photo, a PDF, a web page saved under an image name, a decompression bomb, ...)."""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fishcore.errors import ImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
# Pillow's own threshold: a larger image is treated as a decompression bomb, not decoded.
MAX_PIXELS = 89_478_485

ImageSource = str | os.PathLike | bytes | BinaryIO


def _open(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageError("decompression bomb: too many pixels to decode safely") from exc
    if img.width * img.height > max_pixels:  # read from the header: nothing is decoded yet
        raise ImageError(f"{img.width}x{img.height} pixels is over the limit of {max_pixels:,} (a decompression bomb, "
                         "or a photo too large to decode safely)")  # fmt: skip
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency goes onto white, 16-bit and float data are rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"avif")
HEIC_ADVICE = (
    "HEIC photos (iPhone) are not supported: export them as JPEG (Photos app: Export, or set Camera > Formats > Most Compatible)"
)


def _not_a_photo(head: bytes) -> str | None:
    """What a file that Pillow cannot open is, from its first bytes, and what to do; None if unknown."""
    if not head:
        return "empty file (0 bytes)"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return HEIC_ADVICE
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    if text.startswith(b"%pdf"):
        return "a PDF document, not a photo: export the page as JPEG or PNG"
    if b"<svg" in text:
        return "an SVG drawing, not a photo: export it as PNG or JPEG"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text or b"<head" in text:
        return "a web page (HTML) saved under an image name, not the picture: open it and save the image itself"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "a text file, not an image"


def _head(source: ImageSource, n: int = 1024) -> bytes:
    try:
        if isinstance(source, bytes):
            return source[:n]
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(n)
        source.seek(0)
        return source.read(n)
    except (OSError, ValueError, AttributeError):
        return b"\x00"  # unknown: no specific message


def check_pixels(source: ImageSource, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """A photo's (width, height) from its header alone, or ImageError when it is not a photo or over max_pixels."""
    try:
        img = _open(source, max_pixels)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(_not_a_photo(_head(source)) or "not an image (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt image ({exc or type(exc).__name__})") from exc
    return img.width, img.height


def load_image(source: ImageSource, min_size: int | None = None, max_pixels: int | None = None) -> Image.Image:
    """Decode a file, bytes or stream to an upright RGB image (``max_pixels``: a lower limit than MAX_PIXELS, checked
    from the header before anything is decoded).

    ``min_size`` lets a JPEG decode at a reduced scale (never below that many pixels on its shorter
    side), which makes a 12-megapixel phone photo several times cheaper to read.
    """
    try:
        img = _open(source, max_pixels or MAX_PIXELS)
        if min_size and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
            # draft() must see the final orientation's short side, which rotation does not change.
            img.draft("RGB", (min_size, min_size))
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(_not_a_photo(_head(source)) or "not an image (unrecognised format)") from exc
    except FileNotFoundError as exc:
        raise ImageError(f"file not found: {source}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        message = str(exc)
        if "truncated" in message.lower():
            raise ImageError("truncated image file") from exc
        raise ImageError(f"corrupt image ({message or type(exc).__name__})") from exc


def load_image_file(path: str | os.PathLike, min_size: int | None = None) -> Image.Image:
    """load_image for a photo of a dataset: its error message starts with the file's path."""
    try:
        return load_image(path, min_size)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}", path=str(path)) from exc
