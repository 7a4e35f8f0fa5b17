"""The managed dataset area: one folder per dataset under the workspace, one sub-folder per class.

Photos come in through an *import*: ``plan_import`` reads a source (a zip, a folder, or loose photos
with a class name), checks every photo and compares it with what the dataset already holds, and
returns a plan that changes nothing; ``apply_import`` then writes the planned photos into the dataset
folder, and only there. Deleting moves photos to the dataset's trash, from which they can be restored.
"""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import numpy as np

from fishcore.data.images import HEIC_ADVICE, IMAGE_EXTENSIONS
from fishcore.data.nearcopy import first_near_copy
from fishcore.data.scan import DatasetScan, ImageItem, inspect_bytes, remember_scanned, scan
from fishcore.errors import ArchiveError, DatasetError, ImageError
from fishcore.events import StopRequested
from fishcore.store.archive import SafeZip, is_system_file, name_parts, name_problem
from fishcore.store.jsonfile import read_json

TRASH = ".trash"
NAME_MAX = 80
FEW_PHOTOS = 10  # a class with fewer photos gets a warning
IMBALANCE = 5.0  # largest class / smallest class beyond this gets a warning
UNSUPPORTED = {
    ".heic": HEIC_ADVICE,
    ".heif": "HEIF photos are not supported: convert them to JPEG first",
    ".gif": "GIF is not a photo format here: save it as PNG or JPEG",
    ".tif": "TIFF is not supported: save it as PNG or JPEG",
    ".tiff": "TIFF is not supported: save it as PNG or JPEG",
}


def safe_name(text: str, what: str = "name") -> str:
    """A dataset or class name that is one plain folder name, NFC-normalised, or DatasetError."""
    name = unicodedata.normalize("NFC", str(text)).strip()
    if not name:
        raise DatasetError(f"the {what} is empty", what=what)
    if len(name) > NAME_MAX:
        raise DatasetError(f"the {what} '{name[:20]}...' is longer than {NAME_MAX} characters", what=what)
    if any(ch in name for ch in "/\\") or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise DatasetError(f"the {what} {name!r} may not contain '/', '\\' or control characters", what=what)
    if name.startswith(".") or name in (".", ".."):
        raise DatasetError(f"the {what} {name!r} may not start with a dot", what=what)
    return name


def _inside(root: Path, path: Path) -> Path:
    """path, after checking that it resolves inside root (no escape through links or '..')."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DatasetError(f"{path} is outside {root}")
    return resolved


# A dataset's field photos (taught from the catch log, fishcore.training.teaching): photo path -> the catch entry it
# came from, with its date, place and the model that answered.
FIELD_MANIFEST = ".field.json"


def field_manifest(dataset_dir: str | os.PathLike) -> dict[str, dict]:
    """The dataset's field photos: relative path -> {entry, date, place, model, ...}; {} when it has none."""
    path = Path(dataset_dir) / FIELD_MANIFEST
    return read_json(path) if path.is_file() else {}


def field_photos_of(dataset_root: str | os.PathLike, paths: Iterable[str]) -> dict | None:
    """For a model card: how many of ``paths`` (a split's) are field photos, and which catch entries they are."""
    manifest = field_manifest(dataset_root)
    used = [manifest[p]["entry"] for p in paths if p in manifest]
    return {"count": len(used), "entries": used} if manifest else None


# --- the plan -------------------------------------------------------------------------------


@dataclass
class PlannedPhoto:
    """A photo that will be written: where it comes from, its class, and its (unique) file name."""

    origin: str
    label: str
    filename: str
    item: ImageItem
    read: Callable[[], bytes] = field(repr=False)


@dataclass
class ImportPlan:
    """What an import will do; nothing is written until apply_import."""

    dataset: str
    add: list[PlannedPhoto] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (origin, why)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (origin, the photo it repeats): not added
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)  # (origin, the photo it resembles): added
    existing_classes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for photo in self.add:
            out[photo.label] = out.get(photo.label, 0) + 1
        return dict(sorted(out.items()))

    @property
    def new_classes(self) -> list[str]:
        return [c for c in self.counts if c not in self.existing_classes]

    def summary(self) -> str:
        parts = [f"{len(self.add)} photos to add to '{self.dataset}'"]
        if self.new_classes:
            parts.append(f"new classes: {', '.join(self.new_classes)}")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already there (skipped)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} files skipped")
        return "; ".join(parts)


@dataclass
class _Source:
    origin: str
    parts: tuple[str, ...]  # folders then file name, relative to the source's top
    read: Callable[[], bytes]


def _zip_sources(archive: SafeZip, plan: ImportPlan) -> list[_Source]:
    for refusal in archive.refused:
        plan.skipped.append((refusal.name, f"refused: {refusal.reason}"))

    def reader(entry):
        return lambda: archive.read(entry)

    return [_Source(e.name, PurePosixPath(e.name).parts, reader(e)) for e in archive.entries]


def _upload_sources(files: list[tuple[str, bytes]], plan: ImportPlan) -> list[_Source]:
    """Uploaded photos: plain names, or relative paths ('photos/kakap/1.jpg') from a folder upload."""
    out = []
    for name, data in files:
        problem = name_problem(name)
        if problem:
            plan.skipped.append((name, f"refused: {problem}"))
            continue
        parts = name_parts(name)
        if parts and not is_system_file(parts):
            out.append(_Source("/".join(parts), parts, lambda d=data: d))
    return out


def _folder_sources(folder: Path, plan: ImportPlan, max_files: int) -> list[_Source]:
    out: list[_Source] = []
    for dirpath, dirnames, filenames in os.walk(folder):  # never follows links to folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if name.startswith("."):
                continue
            if path.is_symlink():
                plan.skipped.append((rel, "a symbolic link (links are never followed)"))
                continue
            if len(out) >= max_files:
                raise DatasetError(f"{folder} holds more than {max_files} files; import it in parts")
            out.append(_Source(rel, PurePosixPath(rel).parts, lambda p=path: p.read_bytes()))
    return out


def _strip_common_top(sources: list[_Source]) -> None:
    """A zip of a dataset folder ('lsfd/Trout/1.jpg') holds the classes one level down: drop that level."""
    while sources and all(len(s.parts) >= 3 for s in sources) and len({s.parts[0] for s in sources}) == 1:
        for s in sources:
            s.parts = s.parts[1:]


def _unique(folder_names: set[str], filename: str) -> str:
    stem, suffix = os.path.splitext(filename)
    candidate, n = filename, 2
    while candidate.casefold() in folder_names:
        candidate, n = f"{stem}-{n}{suffix}", n + 1
    folder_names.add(candidate.casefold())
    return candidate


class DatasetArea:
    """The managed datasets of a workspace: ``root/<dataset>/<class>/<photo>``, trash in ``root/<dataset>/.trash``."""

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> None:
        self.root = Path(root)
        self.cache_dir = Path(cache_dir) if cache_dir else None

    # --- datasets and classes ---

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def path(self, dataset: str) -> Path:
        return self.root / safe_name(dataset, "dataset name")

    def create(self, dataset: str) -> Path:
        path = self.path(dataset)
        if path.exists():
            raise DatasetError(f"a dataset named '{path.name}' already exists", dataset=path.name)
        path.mkdir(parents=True)
        return path

    def existing(self, dataset: str) -> Path:
        path = self.path(dataset)
        if not path.is_dir():
            raise DatasetError(f"no dataset named '{dataset}' (create it first)", dataset=dataset)
        return path

    def scan(self, dataset: str) -> DatasetScan:
        return scan(self.existing(dataset), cache_dir=self.cache_dir)

    def classes(self, dataset: str) -> dict[str, int]:
        """Photo files per class folder (without decoding them): cheap enough to show on every rerun."""
        root = self.existing(dataset)
        out = {}
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out[folder.name] = sum(1 for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        return out

    def warnings(self, dataset: str) -> list[str]:
        """What would make training on this dataset weak, each with what to do about it."""
        counts = {c: n for c, n in self.classes(dataset).items()}
        out = []
        if len([n for n in counts.values() if n]) < 2:
            out.append("Training needs at least two classes with photos: add another species.")
        few = [f"{c} ({n})" for c, n in counts.items() if n < FEW_PHOTOS]
        if few:
            out.append(
                f"Few photos in {', '.join(few)}: add at least {FEW_PHOTOS} per species, from different fish and angles; "
                "results on fewer are unreliable."
            )
        filled = [n for n in counts.values() if n]
        if len(filled) >= 2 and max(filled) > IMBALANCE * min(filled):
            big = max(counts, key=counts.get)
            small = min((c for c in counts if counts[c]), key=counts.get)
            out.append(
                f"Classes are badly imbalanced ({big}: {counts[big]}, {small}: {counts[small]}): the model will favour "
                f"the large ones. Add photos of {small}, or set aside some of {big}."
            )
        return out

    # --- import ---

    def plan_import(
        self,
        dataset: str,
        source: str | os.PathLike | bytes | list[tuple[str, bytes]],
        class_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        max_files: int = 20_000,
    ) -> ImportPlan:
        """What importing ``source`` into ``dataset`` would add, skip and repeat; writes nothing.

        ``source``: a zip (path or bytes) or a folder whose sub-folders are classes, or uploaded photos
        as (name, bytes) pairs, where a name may be a relative path from a folder upload. With
        ``class_name`` every photo goes into that class; without it, loose photos and files outside a
        class folder are skipped.
        """
        root = self.existing(dataset)
        plan = ImportPlan(dataset=root.name)
        label_override = safe_name(class_name, "class name") if class_name else None
        current = self.scan(dataset)
        plan.existing_classes = list(self.classes(dataset))
        archive = None
        if isinstance(source, list):
            sources = _upload_sources(source, plan)
        elif isinstance(source, bytes):
            archive = SafeZip(source)
            sources = _zip_sources(archive, plan)
        else:
            path = Path(source).expanduser()
            if path.is_dir():
                sources = _folder_sources(path, plan, max_files)
            elif path.is_file() and path.suffix.lower() == ".zip":
                archive = SafeZip(path)
                sources = _zip_sources(archive, plan)
            elif path.is_file():
                sources = [_Source(path.name, (path.name,), lambda p=path: p.read_bytes())]
            else:
                raise DatasetError(f"nothing to import at {path} (not a folder, a zip or a photo)")
        if label_override is None:
            _strip_common_top(sources)

        by_sha = {item.sha256: item.path for item in current.items}
        hashes = np.array([item.phash for item in current.items], dtype=np.uint64)
        hash_paths = [item.path for item in current.items]
        taken: dict[str, set[str]] = {}
        for i, src in enumerate(sources):
            if progress:
                progress(i, len(sources))
            name = src.parts[-1]
            suffix = PurePosixPath(name).suffix.lower()
            if suffix in UNSUPPORTED:
                plan.skipped.append((src.origin, UNSUPPORTED[suffix]))
                continue
            if suffix not in IMAGE_EXTENSIONS:
                plan.skipped.append((src.origin, f"not a photo (file type '{suffix or name}')"))
                continue
            try:
                label = label_override or (safe_name(src.parts[0], "class name") if len(src.parts) >= 2 else None)
            except DatasetError as exc:
                plan.skipped.append((src.origin, str(exc)))
                continue
            if label is None:
                plan.skipped.append((src.origin, "not inside a class folder: choose a class for loose photos"))
                continue
            try:
                filename = safe_name(name, "file name")
                item = inspect_bytes(src.read(), f"{label}/{filename}", label)
            except (ImageError, DatasetError, ArchiveError) as exc:
                plan.skipped.append((src.origin, str(exc)))
                continue
            except OSError as exc:
                plan.skipped.append((src.origin, f"unreadable ({exc.strerror or exc})"))
                continue
            if item.sha256 in by_sha:
                plan.duplicates.append((src.origin, by_sha[item.sha256]))
                continue
            near = first_near_copy(hashes, item.phash)
            if near is not None:
                plan.near_duplicates.append((src.origin, hash_paths[near]))
            if label not in taken:
                folder = root / label
                taken[label] = {f.name.casefold() for f in folder.iterdir()} if folder.is_dir() else set()
            filename = _unique(taken[label], filename)
            rel = f"{label}/{filename}"
            plan.add.append(PlannedPhoto(src.origin, label, filename, item, src.read))
            by_sha[item.sha256] = rel
            hashes = np.append(hashes, np.uint64(item.phash))
            hash_paths.append(rel)
        if progress:
            progress(len(sources), len(sources))
        return plan

    def apply_import(
        self, plan: ImportPlan, progress: Callable[[int, int], None] | None = None, stop: Callable[[], bool] | None = None
    ) -> list[Path]:
        """Write the plan's photos into its dataset (each file written whole, then renamed into place)."""
        root = self.existing(plan.dataset)
        written: list[Path] = []
        items: list[ImageItem] = []
        for i, photo in enumerate(plan.add):
            if stop and stop():
                raise StopRequested()
            folder = _inside(root, root / safe_name(photo.label, "class name"))
            folder.mkdir(exist_ok=True)
            target = _inside(root, folder / safe_name(photo.filename, "file name"))
            tmp = folder / f".{photo.filename}.{os.getpid()}.part"
            tmp.write_bytes(photo.read())
            if target.exists():  # appeared since the plan: keep both
                target = folder / _unique({f.name.casefold() for f in folder.iterdir()}, photo.filename)
            os.replace(tmp, target)
            written.append(target)
            items.append(replace(photo.item, path=target.relative_to(root).as_posix(), label=folder.name))
            if progress:
                progress(i + 1, len(plan.add))
        if self.cache_dir is not None and items:
            remember_scanned(root, items, self.cache_dir)
        return written

    def import_photos(self, dataset: str, source, class_name: str | None = None) -> tuple[ImportPlan, list[Path]]:
        plan = self.plan_import(dataset, source, class_name)
        return plan, self.apply_import(plan)

    # --- manage ---

    def rename_class(self, dataset: str, old: str, new: str) -> None:
        root = self.existing(dataset)
        src = _inside(root, root / safe_name(old, "class name"))
        dst = root / safe_name(new, "class name")
        if not src.is_dir():
            raise DatasetError(f"no class '{old}' in '{dataset}'")
        if dst.exists() and dst.resolve() != src:
            raise DatasetError(f"'{new}' already exists in '{dataset}': merge the classes instead")
        os.replace(src, dst)

    def merge_classes(self, dataset: str, sources: Iterable[str], into: str) -> int:
        """Move every photo of ``sources`` into class ``into`` (created if needed); returns photos moved."""
        root = self.existing(dataset)
        target = root / safe_name(into, "class name")
        target.mkdir(exist_ok=True)
        names = {f.name.casefold() for f in target.iterdir()}
        moved = 0
        for cls in sources:
            folder = _inside(root, root / safe_name(cls, "class name"))
            if folder == target.resolve() or not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    os.replace(f, target / _unique(names, f.name))
                    moved += 1
            shutil.rmtree(folder)
        return moved

    def _to_trash(self, root: Path, rel_paths: list[str]) -> str:
        batch = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"
        for rel in rel_paths:
            src = _inside(root, root / rel)
            if not src.exists():
                raise DatasetError(f"'{rel}' is not in '{root.name}'")
            dst = root / TRASH / batch / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        return batch

    def delete_class(self, dataset: str, cls: str) -> str:
        root = self.existing(dataset)
        return self._to_trash(root, [safe_name(cls, "class name")])

    def move_photos(self, dataset: str, rel_paths: list[str], to_class: str) -> list[str]:
        """Move photos into another class (made if new); their new relative paths."""
        root = self.existing(dataset)
        folder = _inside(root, root / safe_name(to_class, "class name"))
        folder.mkdir(exist_ok=True)
        moved = []
        for rel in rel_paths:
            src = _inside(root, root / rel)
            if rel.startswith(TRASH) or len(PurePosixPath(rel).parts) != 2 or not src.is_file():
                raise DatasetError(f"'{rel}' is not a photo of '{dataset}' (expected class/file)")
            dst = folder / _unique({f.name.casefold() for f in folder.iterdir()}, src.name)
            os.replace(src, dst)
            moved.append(dst.relative_to(root).as_posix())
        return moved

    def delete_photos(self, dataset: str, rel_paths: list[str]) -> str:
        root = self.existing(dataset)
        for rel in rel_paths:
            if rel.startswith(TRASH) or len(PurePosixPath(rel).parts) != 2:
                raise DatasetError(f"'{rel}' is not a photo of '{dataset}' (expected class/file)")
        return self._to_trash(root, rel_paths)

    def trash(self, dataset: str) -> list[tuple[str, list[str]]]:
        """Deleted batches, newest first, each with what it holds ('class/' for a whole class)."""
        folder = self.existing(dataset) / TRASH
        if not folder.is_dir():
            return []
        out = []
        for batch in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
            held = []
            for cls in sorted(batch.iterdir()):
                files = sorted(f.name for f in cls.iterdir()) if cls.is_dir() else []
                held.extend([f"{cls.name}/{f}" for f in files] if len(files) <= 3 else [f"{cls.name}/ ({len(files)} photos)"])
            out.append((batch.name, held))
        return out

    def restore(self, dataset: str, batch: str) -> int:
        """Put a trash batch back where it was (a name taken since gets a suffix); returns photos restored."""
        root = self.existing(dataset)
        folder = _inside(root, root / TRASH / safe_name(batch, "trash batch"))
        if not folder.is_dir():
            raise DatasetError(f"nothing called '{batch}' in the trash of '{dataset}'")
        restored = 0
        for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
            target = root / cls.name
            target.mkdir(exist_ok=True)
            names = {f.name.casefold() for f in target.iterdir()}
            for f in sorted(cls.iterdir()):
                os.replace(f, target / _unique(names, f.name))
                restored += 1
        shutil.rmtree(folder)
        return restored

    def empty_trash(self, dataset: str) -> None:
        shutil.rmtree(self.existing(dataset) / TRASH, ignore_errors=True)
