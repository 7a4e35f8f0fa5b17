"""Datasets: scan a class-per-folder tree, load any image as RGB, split it without leaking near-duplicates."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fishcore.config import DataConfig
from fishcore.errors import DatasetError, ImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
# Pillow's own threshold: a larger image is treated as a decompression bomb, not decoded.
MAX_PIXELS = 89_478_485

Progress = Callable[[int, int], None]
ImageSource = str | os.PathLike | bytes | BinaryIO


@dataclass(frozen=True)
class ImageItem:
    """One usable image of a dataset."""

    path: str  # relative to the dataset root, '/'-separated
    label: str
    sha256: str
    width: int
    height: int
    phash: int  # 64-bit perceptual hash, the same for flipped and rotated copies


@dataclass(frozen=True)
class ScanProblem:
    """A file that cannot be used, and why."""

    path: str
    reason: str


@dataclass
class DatasetScan:
    """What a dataset folder holds: usable images per class and every unusable file with its reason."""

    root: Path
    items: list[ImageItem]
    problems: list[ScanProblem]
    classes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for item in self.items:
            counts[item.label] += 1
        return counts

    @property
    def fingerprint(self) -> str:
        """A hash of every image's class and content; equal fingerprints mean the same data."""
        h = hashlib.sha256()
        for item in sorted(self.items, key=lambda i: (i.label, i.sha256)):
            h.update(f"{item.label}\0{item.sha256}\n".encode())
        return h.hexdigest()


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageError("decompression bomb: too many pixels to decode safely") from exc
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"decompression bomb: {img.width}x{img.height} pixels is over the limit of {MAX_PIXELS}")
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


def load_image(source: ImageSource, min_size: int | None = None) -> Image.Image:
    """Decode a file, bytes or stream to an upright RGB image.

    ``min_size`` lets a JPEG decode at a reduced scale (never below that many pixels on its shorter
    side), which makes a 12-megapixel phone photo several times cheaper to read.
    """
    try:
        img = _open(source)
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


# --- perceptual hash -------------------------------------------------------------------------

_DCT_N = 32
_DCT = np.array(
    [[np.cos(np.pi * (2 * x + 1) * u / (2 * _DCT_N)) for x in range(_DCT_N)] for u in range(_DCT_N)],
    dtype=np.float64,
)


def load_image_file(path: str | os.PathLike, min_size: int | None = None) -> Image.Image:
    """load_image for a photo of a dataset: its error message starts with the file's path."""
    try:
        return load_image(path, min_size)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}", path=str(path)) from exc


def _dct_hash(gray: np.ndarray) -> int:
    coeffs = (_DCT @ gray @ _DCT.T)[:8, :8].ravel()
    bits = coeffs > np.median(coeffs[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def perceptual_hash(img: Image.Image) -> int:
    """64-bit DCT hash that ignores flips and 90-degree rotations (the minimum over the 8 views)."""
    gray = np.asarray(img.convert("L").resize((_DCT_N, _DCT_N), Image.Resampling.BILINEAR), dtype=np.float64)
    views = []
    for k in range(4):
        rotated = np.rot90(gray, k)
        views.append(rotated)
        views.append(rotated[:, ::-1])
    return min(_dct_hash(v) for v in views)


# --- scanning --------------------------------------------------------------------------------


def _inspect(path: Path, rel: str, label: str, min_side: int) -> ImageItem:
    return inspect_bytes(path.read_bytes(), rel, label, min_side)


def inspect_bytes(data: bytes, rel: str, label: str, min_side: int = 16) -> ImageItem:
    """Decode a photo's bytes and describe it (size, content and perceptual hashes), or raise ImageError."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    img = load_image(data, min_size=64)
    # The header size, not the draft-decoded one, is what the user knows the photo by.
    with Image.open(io.BytesIO(data)) as header:
        width, height = header.size
        if (ImageOps.exif_transpose(header) or header).size != (width, height):
            width, height = height, width
    if min(width, height) < min_side:
        raise ImageError(f"too small ({width}x{height} px; needs at least {min_side} px on each side)")
    return ImageItem(
        path=rel,
        label=label,
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        phash=perceptual_hash(img),
    )


# A typed "/" or home folder must not make the server walk its whole disk: a scan stops with a clear
# error beyond these (a dataset is a folder of species folders, photos at most a few levels below).
SCAN_MAX_FILES = 200_000
SCAN_MAX_DEPTH = 6  # folder levels below a species folder


def _candidate_files(
    root: Path, max_files: int = SCAN_MAX_FILES, max_depth: int = SCAN_MAX_DEPTH
) -> tuple[list[tuple[Path, str, str]], list[ScanProblem]]:
    files: list[tuple[Path, str, str]] = []
    problems: list[ScanProblem] = []
    seen = 0
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            problems.append(ScanProblem(_nfc(entry.name), "not inside a class folder (ignored)"))
            continue
        if not entry.is_dir():
            continue
        label = _nfc(entry.name)
        for dirpath, dirnames, filenames in os.walk(entry):
            depth = len(Path(dirpath).relative_to(entry).parts)
            if depth >= max_depth:
                if dirnames:
                    rel = _nfc(Path(dirpath).relative_to(root).as_posix())
                    problems.append(ScanProblem(rel, f"folders more than {max_depth} levels deep were not read"))
                dirnames[:] = []
            else:
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                seen += 1
                if seen > max_files:
                    raise DatasetError(
                        f"more than {max_files:,} files under {root}: that is not one dataset. Choose the folder "
                        "that holds the species folders",
                        root=str(root),
                    )
                path = Path(dirpath) / name
                rel = _nfc(path.relative_to(root).as_posix())
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    problems.append(ScanProblem(rel, f"not an image (unsupported file type '{path.suffix or name}')"))
                else:
                    files.append((path, rel, label))
    return files, problems


def _scan_cache_path(cache_dir: Path, root: Path, min_side: int) -> Path:
    key = hashlib.sha1(f"{root.resolve()}|{min_side}".encode()).hexdigest()[:16]
    return cache_dir / f"scan-{key}.json"


def _load_scan_cache(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_scan_cache(path: Path, entries: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def scan(
    root: str | os.PathLike,
    min_side: int = 16,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike | None = None,
    max_files: int = SCAN_MAX_FILES,
    max_depth: int = SCAN_MAX_DEPTH,
) -> DatasetScan:
    """List usable images per class folder and report every unusable file, without failing.

    With ``cache_dir``, a file whose size and modification time are unchanged since the last scan is
    not decoded again, so re-scanning a folder of thousands of photos takes a moment. More than
    ``max_files`` files is a DatasetError; folders deeper than ``max_depth`` below a species folder are
    not read (reported as a problem).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root} (a dataset is a folder with one sub-folder per class)")
    files, problems = _candidate_files(root, max_files, max_depth)
    cache_path = _scan_cache_path(Path(cache_dir), root, min_side) if cache_dir else None
    cache = _load_scan_cache(cache_path)
    fresh: dict[str, dict] = {}
    items: list[ImageItem] = []

    def entry_of(file: tuple[Path, str, str]) -> dict | OSError:
        path, rel, label = file
        try:
            st = path.stat()
            stamp = [st.st_size, st.st_mtime_ns]
            hit = cache.get(rel)
            if hit and hit.get("stamp") == stamp and hit.get("label") == label:
                return hit
            try:
                return {"stamp": stamp, "label": label, "item": asdict(_inspect(path, rel, label, min_side))}
            except ImageError as exc:
                return {"stamp": stamp, "label": label, "problem": str(exc)}
        except OSError as exc:
            return exc

    # Decoding releases the GIL: one photo per core at a time. A progress callback may raise (a stop
    # request): then the files not yet started are cancelled instead of waited for.
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    try:
        for i, ((_, rel, _), entry) in enumerate(zip(files, pool.map(entry_of, files), strict=True)):
            if isinstance(entry, OSError):
                problems.append(ScanProblem(rel, f"unreadable ({entry.strerror or entry})"))
            else:
                fresh[rel] = entry
                if "item" in entry:
                    items.append(ImageItem(**entry["item"]))
                else:
                    problems.append(ScanProblem(rel, entry["problem"]))
            if progress:
                progress(i + 1, len(files))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if cache_path is not None and fresh != cache:
        _save_scan_cache(cache_path, fresh)
    classes = sorted({item.label for item in items})
    return DatasetScan(root=root, items=items, problems=problems, classes=classes)


def remember_scanned(root: str | os.PathLike, items: list[ImageItem], cache_dir: str | os.PathLike, min_side: int = 16) -> None:
    """Add photos just written under root, already inspected, to its scan cache: the next scan reads no pixels of them."""
    root = Path(root)
    path = _scan_cache_path(Path(cache_dir), root, min_side)
    cache = _load_scan_cache(path)
    for item in items:
        try:
            st = (root / item.path).stat()
        except OSError:
            continue
        cache[item.path] = {"stamp": [st.st_size, st.st_mtime_ns], "label": item.label, "item": asdict(item)}
    _save_scan_cache(path, cache)


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


def require_classes(result: DatasetScan, minimum: int = 2) -> None:
    """Raise a clear error unless the scan found enough classes with images to train on."""
    if not result.items:
        raise DatasetError(
            f"no usable images in {result.root}: put photos in one sub-folder per species ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if len(result.classes) < minimum:
        raise DatasetError(
            f"{result.root} has {len(result.classes)} class folder(s) with images; training needs at least {minimum}"
        )


# --- splitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """File lists of a train/validation/test split, relative to the dataset root (test may be elsewhere)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    groups: int = 0  # how many near-duplicate groups the images formed
    test_root: str | None = None  # set when the test images come from a separate folder
    # The group of each photo of the dataset (path -> id): training uses it, the card does not keep it.
    group_of: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
            "groups": self.groups,
            "test_root": self.test_root,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(
            train=tuple(data.get("train", ())),
            val=tuple(data.get("val", ())),
            test=tuple(data.get("test", ())),
            groups=int(data.get("groups", 0)),
            test_root=data.get("test_root"),
        )


def label_of(rel_path: str) -> str:
    """The class of a dataset-relative path: its first folder."""
    return rel_path.split("/", 1)[0]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_items(items: list[ImageItem], cfg: DataConfig) -> list[int]:
    """Group id per item: near-duplicates (perceptual hash) and same-pattern names share a group."""
    uf = _UnionFind(len(items))
    if cfg.group_near_duplicates and items:
        hashes = np.array([item.phash for item in items], dtype=np.uint64)
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            by_label[item.label].append(i)
        for idx in by_label.values():
            h = hashes[idx]
            xor = h[:, None] ^ h[None, :]
            dist = np.unpackbits(xor.view(np.uint8), axis=-1).reshape(len(idx), len(idx), 64).sum(-1)
            for a, b in zip(*np.nonzero(np.triu(dist <= cfg.duplicate_distance, k=1)), strict=True):
                uf.union(idx[a], idx[b])
    if cfg.group_pattern:
        try:
            pattern = re.compile(cfg.group_pattern)
        except re.error as exc:
            raise DatasetError(f"invalid group pattern {cfg.group_pattern!r}: {exc}") from exc
        first_with_key: dict[tuple[str, str], int] = {}
        for i, item in enumerate(items):
            match = pattern.search(item.path.rsplit("/", 1)[-1])
            if match:
                key = (item.label, match.group(1) if match.groups() else match.group(0))
                uf.union(first_with_key.setdefault(key, i), i)
    return [uf.find(i) for i in range(len(items))]


def _allocate(n_groups_sizes: list[int], targets: list[int]) -> list[int]:
    """Assign groups (in order) to splits so each split's image count approaches its target."""
    filled = [0] * len(targets)
    out = []
    for size in n_groups_sizes:
        # The split with the largest remaining need takes the group; ties go to the first (test, val).
        need = [t - f for t, f in zip(targets, filled, strict=True)]
        k = max(range(len(targets)), key=lambda j: (need[j], -j))
        out.append(k)
        filled[k] += size
    return out


def split_dataset(result: DatasetScan, cfg: DataConfig, test_scan: DatasetScan | None = None) -> Split:
    """Stratified, seeded train/val/test split that keeps each near-duplicate group on one side."""
    if not 0 <= cfg.val_fraction < 1 or not 0 <= cfg.test_fraction < 1:
        raise DatasetError("split fractions must be between 0 and 1")
    test_fraction = 0.0 if test_scan is not None else cfg.test_fraction
    if cfg.val_fraction + test_fraction >= 1:
        raise DatasetError("validation and test fractions leave nothing to train on")
    groups = group_items(result.items, cfg)
    members: dict[int, list[ImageItem]] = defaultdict(list)
    for item, g in zip(result.items, groups, strict=True):
        members[g].append(item)
    by_label: dict[str, list[list[ImageItem]]] = defaultdict(list)
    for g in sorted(members):
        by_label[members[g][0].label].append(members[g])
    rng = random.Random(cfg.seed)
    parts: dict[str, list[str]] = {"test": [], "val": [], "train": []}
    for label in sorted(by_label):
        label_groups = by_label[label]
        rng.shuffle(label_groups)
        n = sum(len(g) for g in label_groups)
        n_test = round(n * test_fraction)
        n_val = round(n * cfg.val_fraction)
        targets = [n_test, n_val, n - n_test - n_val]
        for grp, k in zip(label_groups, _allocate([len(g) for g in label_groups], targets), strict=True):
            parts[("test", "val", "train")[k]].extend(item.path for item in grp)
    test = sorted(parts["test"]) if test_scan is None else sorted(i.path for i in test_scan.items)
    return Split(
        train=tuple(sorted(parts["train"])),
        val=tuple(sorted(parts["val"])),
        test=tuple(test),
        groups=len(members),
        test_root=str(test_scan.root) if test_scan is not None else None,
        group_of={item.path: g for item, g in zip(result.items, groups, strict=True)},
    )


def resolve(root: str | os.PathLike, rel_paths: Iterable[str]) -> list[tuple[Path, str]]:
    """(absolute path, label) for dataset-relative paths, failing clearly if any file is gone."""
    root = Path(root)
    out = []
    missing = []
    for rel in rel_paths:
        path = root / rel
        if not path.is_file():
            missing.append(rel)
        out.append((path, label_of(rel)))
    if missing:
        raise DatasetError(
            f"{len(missing)} file(s) of the saved split are missing under {root} (first: {missing[0]}); "
            "is this the folder the model was trained on?"
        )
    return out
