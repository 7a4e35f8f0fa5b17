"""Reading a zip someone uploaded: an untrusted archive, so nothing in it is believed.

``open_zip`` lists the entries fit to read and refuses the rest, each with a reason that names the
entry: absolute paths, ``..`` components, symlinks, nested archives, encrypted entries, names that are
not valid UTF-8 or that collide with another after Unicode normalisation and case folding, and
entries whose compression ratio is beyond any photo's. The whole archive is refused when it holds
more files, or more uncompressed bytes, than the limits. Nothing is ever extracted to disk here: the
caller reads an entry's bytes (capped at its declared size) and decides where they go.
"""

from __future__ import annotations

import io
import os
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from fishcore.errors import ArchiveError

NESTED_ARCHIVES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst"})
SYSTEM_PARTS = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class ArchiveLimits:
    """What an uploaded archive may hold. Photos compress little (JPEG about 1:1, PNG up to about 1:5)."""

    max_files: int = 20_000
    max_total_bytes: int = 4 * 1024**3  # uncompressed
    max_entry_bytes: int = 100 * 1024**2  # one photo
    max_ratio: float = 100.0  # uncompressed / compressed, per entry larger than 1 MiB


@dataclass(frozen=True)
class Entry:
    """A zip member fit to read: its normalised '/'-separated name and the member itself."""

    name: str
    info: zipfile.ZipInfo


@dataclass(frozen=True)
class Refusal:
    """A member that will not be read, and why (``name`` as the archive spells it, made printable)."""

    name: str
    reason: str


def is_system_file(parts: tuple[str, ...]) -> bool:
    """macOS and Windows bookkeeping (__MACOSX/, ._x, .DS_Store, Thumbs.db), not photos."""
    return any(p in SYSTEM_PARTS or p.startswith("._") for p in parts)


def _printable(raw: str) -> str:
    return raw.encode("utf-8", "backslashreplace").decode("utf-8") if raw.isprintable() else ascii(raw)


def _decoded_name(info: zipfile.ZipInfo) -> str | None:
    """The member's name as UTF-8, or None when its bytes are not valid UTF-8.

    zipfile decodes names without the UTF-8 flag as cp437, which always succeeds; most tools
    (macOS, 7-Zip, Python) write UTF-8 without setting the flag, so the bytes are tried as UTF-8.
    """
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.orig_filename.encode("cp437", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def name_problem(name: str) -> str | None:
    """Why a relative file name from outside (an archive entry, an uploaded folder's file) is refused, or None."""
    if "\x00" in name or any(unicodedata.category(ch) == "Cc" for ch in name):
        return "its name contains control characters"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "an absolute path (archives may only hold relative paths)"
    if ".." in PurePosixPath(posix).parts:
        return "a '..' path that points outside the archive's folder"
    return None


def name_parts(name: str) -> tuple[str, ...]:
    """The NFC-normalised folder and file names of a vetted relative name ('\\' counts as '/')."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return tuple(unicodedata.normalize("NFC", p) for p in parts if p not in ("", "."))


def _problem(name: str, info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """Why a member with this (decoded) name is refused, or None."""
    problem = name_problem(name)
    if problem:
        return problem
    posix = name.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link (links are never followed)"
    if info.flag_bits & 0x1:
        return "encrypted (password-protected entries are not read)"
    if PurePosixPath(posix).suffix.lower() in NESTED_ARCHIVES:
        return "an archive inside the archive (unpack it and upload its photos)"
    if info.file_size > limits.max_entry_bytes:
        return (
            f"too large ({info.file_size / 1024**2:.0f} MB uncompressed; the limit is {limits.max_entry_bytes / 1024**2:.0f} MB)"
        )
    if info.file_size > 1024**2 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        return f"compressed {info.file_size / max(info.compress_size, 1):.0f}:1, more than any photo (a zip bomb?)"
    return None


class SafeZip:
    """An opened, vetted archive: ``entries`` to read, ``refused`` with reasons, ``read`` capped bytes."""

    def __init__(self, source: str | os.PathLike | bytes | BinaryIO, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ArchiveError(f"not a readable zip archive ({exc})") from exc
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_files:
            raise ArchiveError(f"the archive holds {len(infos)} entries; the limit is {self.limits.max_files}")
        total = sum(i.file_size for i in infos)
        if total > self.limits.max_total_bytes:
            raise ArchiveError(
                f"the archive unpacks to {total / 1024**3:.1f} GB; the limit is {self.limits.max_total_bytes / 1024**3:.1f} GB"
            )
        self.entries: list[Entry] = []
        self.refused: list[Refusal] = []
        seen: dict[str, str] = {}
        for info in infos:
            name = _decoded_name(info)
            if name is None:
                shown = info.orig_filename.encode("cp437", "replace").decode("utf-8", "backslashreplace")
                self.refused.append(Refusal(shown, "its name is not valid UTF-8"))
                continue
            if info.is_dir():
                continue
            parts = name_parts(name)
            if is_system_file(parts):
                continue
            reason = _problem(name, info, self.limits)
            if reason is None:
                normal = "/".join(parts)
                key = normal.casefold()
                if key in seen:
                    reason = f"its name collides with '{seen[key]}' (names differing only in case or accents)"
                else:
                    seen[key] = normal
                    self.entries.append(Entry(normal, info))
                    continue
            self.refused.append(Refusal(_printable(name), reason))

    def read(self, entry: Entry) -> bytes:
        """The member's bytes; a member that unpacks to more than it declared is refused."""
        limit = entry.info.file_size
        try:
            with self._zip.open(entry.info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ArchiveError(f"{entry.name}: cannot be unpacked ({exc})") from exc
        if len(data) > limit:
            raise ArchiveError(f"{entry.name}: unpacks to more bytes than its header declares (refused)")
        return data

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
