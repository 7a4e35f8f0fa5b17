"""`./run.sh bench --health [ROOT]`: how well dataset health finds photos filed under the wrong species.

A copy of each shared set (F4K, EGU) gets a known share of its labels swapped on purpose (each chosen photo
moved into another species' folder, seeded); fishcore.training.health.check_dataset then flags the copy.
Printed per set: swaps made, how many of the top-k "possible mislabel" flags are swaps (precision at k, k =
the number of swaps), how many swaps are flagged at all (recall), and how many true photos are flagged.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import measured_on

SWAP_SHARE = 0.05


def run_health(root: str, seed: int = 0, log=print) -> str:
    from fishcore.training.health import check_dataset

    base = Path(root).expanduser().resolve()
    lines = [
        measured_on(f"; data {base}; command `./run.sh bench --health {root}`; {SWAP_SHARE:.0%} of labels swapped, seed {seed}."),
        "",
        "| set | photos | swapped | top-k flags that are swaps (k = swaps) | swaps flagged at all | true photos flagged "
        "| near-copy flags | outlier flags | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("f4k", "egu"):
        if not (base / name).is_dir():
            continue
        with tempfile.TemporaryDirectory(prefix="fishcore-health-") as tmp:
            copy = Path(tmp) / name
            shutil.copytree(base / name, copy)
            photos = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
            classes = sorted(d.name for d in copy.iterdir() if d.is_dir())
            rng = random.Random(seed)
            swapped = set()
            for rel in rng.sample(photos, round(SWAP_SHARE * len(photos))):
                label, file = rel.split("/", 1)
                target = rng.choice([c for c in classes if c != label])
                (copy / rel).rename(copy / target / file)
                swapped.add(f"{target}/{file}")
            log(f"{name}: checking {len(photos)} photos, {len(swapped)} swapped...")
            started = time.perf_counter()
            flags = check_dataset(copy, Path(tmp) / "cache")
            seconds = time.perf_counter() - started
            mislabels = [f.path for f in flags if f.kind == "mislabel"]
            top = mislabels[: len(swapped)]
            hits = sum(p in swapped for p in top)
            lines.append(
                f"| {name} | {len(photos)} | {len(swapped)} | {hits} of {len(top)} ({hits / max(len(top), 1):.0%}) | "
                f"{sum(p in swapped for p in mislabels)} of {len(swapped)} | {sum(p not in swapped for p in mislabels)} | "
                f"{sum(f.kind == 'near_copy' for f in flags)} | {sum(f.kind == 'outlier' for f in flags)} | {seconds:.0f} |"
            )
    return "\n".join(lines)
