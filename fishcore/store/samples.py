"""The sample photos shipped in assets/samples/ (Fish4Knowledge and EGU, notices in assets/README.md).

They give a fresh clone, with no dataset configured, something to show: the Augmentation lab's first
view, Predict's examples and Compare's ready example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fishcore.settings import Paths

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Each set is a dataset folder of its own: one sub-folder per species (sources in assets/README.md).
SAMPLE_SETS = ("egu", "f4k")


@dataclass(frozen=True)
class SamplePhoto:
    """One shipped photo: its file, its species (the folder name) and the set it comes from."""

    path: Path
    species: str
    source: str  # one of SAMPLE_SETS


def samples_root() -> Path:
    return Paths.from_env().home / "assets" / "samples"


def sample_set(name: str) -> Path:
    """The folder of one sample set (a dataset folder: one sub-folder per species)."""
    if name not in SAMPLE_SETS:
        raise KeyError(f"no sample set {name!r}; one of: {', '.join(SAMPLE_SETS)}")
    return samples_root() / name


def sample_photos() -> list[SamplePhoto]:
    """Every shipped sample photo, by set, species and file name; empty if the folder is missing."""
    out = []
    for source in SAMPLE_SETS:
        root = sample_set(source)
        if not root.is_dir():
            continue
        for species in sorted(p for p in root.iterdir() if p.is_dir()):
            out += [
                SamplePhoto(path, species.name, source)
                for path in sorted(species.iterdir())
                if path.suffix.lower() in IMAGE_SUFFIXES
            ]
    return out
