"""Scanning a dataset: a class-per-folder tree's usable photos (size, content and perceptual hashes) and every
unusable file with the reason, with a cache so that a rescan decodes only what changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from fishcore.data.images import IMAGE_EXTENSIONS, load_image
from fishcore.data.phash import perceptual_hash
from fishcore.errors import DatasetError, ImageError

Progress = Callable[[int, int], None]


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
