"""Pick the sample photos shipped in assets/samples/ from ../shared/data (F4K and EGU only).

Five photos per species, each from a different video track (F4K) or video (EGU), spread over the
species' tracks in name order, copied byte for byte. Run from the project root:
`.venv/bin/python assets/make_samples.py`. The shared data's README allows these few photos in the
repository with their notices (assets/README.md); LSFD and nonfish photos may not be shipped.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

PER_SPECIES = 5
SETS = {"f4k": re.compile(r"fish_(\d+)_"), "egu": re.compile(r"(\d{8}_\d{6})_")}
MAX_BYTES = 2_000_000


def pick(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """The first frame of PER_SPECIES groups spread evenly over the folder's groups."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        m = pattern.search(path.name)
        groups.setdefault(m.group(1) if m else path.name, []).append(path)
    keys = sorted(groups)
    step = max(len(keys) / PER_SPECIES, 1)
    chosen = sorted({keys[int(i * step)] for i in range(min(PER_SPECIES, len(keys)))})
    return [groups[k][0] for k in chosen]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    shared, out = root.parent / "shared" / "data", root / "assets" / "samples"
    if out.exists():
        shutil.rmtree(out)
    total = 0
    for name, pattern in SETS.items():
        for species in sorted(p for p in (shared / name).iterdir() if p.is_dir()):
            target = out / name / species.name
            target.mkdir(parents=True)
            for photo in pick(species, pattern):
                shutil.copyfile(photo, target / photo.name)
                total += photo.stat().st_size
    print(f"{sum(1 for _ in out.rglob('*.png'))} photos, {total / 1e6:.2f} MB in {out}")
    return 0 if total <= MAX_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
