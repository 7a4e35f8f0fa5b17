"""`./run.sh bench --add-species [ROOT]`: a fisheries officer adds species to the bundled model's photos.

The scenario of issue 10, timed step by step on the shared photos of ROOT (default ../shared/data):

1. a dataset is made from the LSFD photos the bundled model was trained on, and version 1 is trained
   on it (instant mode, a cold feature cache: what a fresh clone has);
2. the four F4K species arrive as a zip and a fifth species as a dozen single photos (the camera path:
   EGU burbot frames stand in for them);
3. version 2 is trained on the updated dataset in instant, fast and auto mode, each timed from the end
   of the upload to a saved model that can be made active (a file rename).

Reported: seconds per step, macro-F1 of the new species and of the old ones on the held-out test split
(F4K tracks and EGU videos kept on one side). Every training runs in its own child process.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from benchmarks.common import measured_on, run_step

GROUPS = r"(fish_\d+|\d{8}_\d{6})_"  # F4K tracks and EGU videos; LSFD near-duplicates go by perceptual hash
CAMERA_CLASS = "burbot"
CAMERA_SHOTS = 12


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(folder.parent).as_posix())
    return buf.getvalue()


def run_add_species(root: str, log=print) -> str:
    from fishcore.store.my_photos import DatasetArea

    data = Path(root).expanduser().resolve()
    for name in ("lsfd", "f4k", "egu"):
        if not (data / name).is_dir():
            raise FileNotFoundError(f"{data / name} is missing (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory(prefix="fishcore-add-") as tmp:
        area = DatasetArea(Path(tmp) / "datasets", cache_dir=Path(tmp) / "scans")
        cache = os.path.join(tmp, "cache")
        models = Path(tmp) / "models"

        log("making the dataset from the LSFD photos...")
        t = time.perf_counter()
        area.create("fish")
        area.apply_import(area.plan_import("fish", data / "lsfd"))
        made = time.perf_counter() - t

        def train(mode: str) -> dict:
            spec = {
                "data": str(area.path("fish")),
                "group": GROUPS,
                "seed": 0,
                "cache": cache,
                "out": str(models / f"fish-{mode}"),
                "model": {},
                "train": {"mode": mode},
            }
            return run_step("acc-train", json.dumps(spec))

        log("version 1: instant mode, cold feature cache...")
        v1 = train("instant")
        old = sorted(v1["per_class_f1"])

        log("uploading the F4K species as a zip and the camera shots...")
        t = time.perf_counter()
        plan = area.plan_import("fish", _zip_folder(data / "f4k"))
        area.apply_import(plan)
        shots = sorted((data / "egu" / CAMERA_CLASS).iterdir())[:: max(1, 65 // CAMERA_SHOTS)][:CAMERA_SHOTS]
        for shot in shots:  # one at a time, as the camera tab adds them
            area.import_photos("fish", [(shot.name, shot.read_bytes())], CAMERA_CLASS)
        upload = time.perf_counter() - t
        classes = area.classes("fish")

        rows = []
        for mode in ("instant", "fast", "auto"):
            log(f"version 2: {mode} mode...")
            r = train(mode)
            new = [c for c in r["per_class_f1"] if c not in old]
            r["new_f1"] = statistics.mean(r["per_class_f1"][c] for c in new)
            r["old_f1"] = statistics.mean(r["per_class_f1"][c] for c in old)
            rows.append((mode, r))

    lines = [
        measured_on(f"; data {data}; command "
        f"`./run.sh bench --add-species {root}`."),
        "",
        f"Dataset from the LSFD photos: {made:.1f} s ({len(old)} species). Version 1 (instant, cold cache): "
        f"{v1['wall']:.1f} s, test macro-F1 {v1['macro_f1']:.4f}.",
        f"Upload of the F4K zip ({sum(classes[c] for c in classes if c not in old and c != CAMERA_CLASS)} photos) and "
        f"{len(shots)} camera shots of {CAMERA_CLASS}: {upload:.1f} s; the dataset now has {len(classes)} species.",
        "",
        "| version 2 mode | end of upload to saved model, s | of which feature extraction, s | new species macro-F1 "
        "| old species macro-F1 (version 1: its own test split) | all species macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    for mode, r in rows:
        recipe = f" (chose {r['recipe']})" if r.get("recipe") else ""
        features = f"{r['feature_seconds']:.1f}" if r.get("feature_seconds") is not None else "-"
        lines.append(
            f"| {mode}{recipe} | {r['wall']:.1f} | {features} | {r['new_f1']:.4f} | {r['old_f1']:.4f} "
            f"({v1['macro_f1']:.4f}) | {r['macro_f1']:.4f} |"
        )
    return "\n".join(lines)
