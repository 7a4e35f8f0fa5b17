"""Photos: `scan`, `health`, `import`, `datasets`, `augment`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fishcore.cli.common import progress_bar
from fishcore.cli.flags import add_augment_flags, augment_config
from fishcore.config import DataConfig, check_int
from fishcore.data.images import load_image
from fishcore.data.scan import scan
from fishcore.errors import FishcoreError
from fishcore.settings import Paths

DATA_HELP = "folder with one sub-folder of photos per species"


def add_commands(sub) -> None:
    p = sub.add_parser("scan", help="list classes, image counts and unusable files of a dataset folder")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--min-side", type=int, default=DataConfig.min_side, help="photos smaller than this are unusable")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_scan)

    p = sub.add_parser(
        "health",
        help="photos that look filed under the wrong species, near-copies under two species, and photos unlike the "
        "rest of their species (as My photos' health check)",
    )
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_health)

    p = sub.add_parser(
        "import",
        help="bring photos into a managed dataset (a zip or folder with one sub-folder per species, or loose photos)",
    )
    p.add_argument("source", nargs="+", help="a .zip, a folder, or photo files (loose photos need --class)")
    p.add_argument("dataset", help="name of the dataset in the workspace's dataset area (created if new)")
    p.add_argument("--class", dest="class_name", default=None, help="put every photo into this class")
    p.add_argument("--dry-run", action="store_true", help="only show what would be added, skipped and repeated")
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("datasets", help="the managed datasets: classes, photo counts and warnings")
    p.add_argument("dataset", nargs="?", help="one dataset (default: list them all)")
    p.set_defaults(run=cmd_datasets)

    p = sub.add_parser("augment", help="write N augmented views of a photo, as training would see them")
    p.add_argument("image")
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, default=8, help="how many views")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    p.add_argument("--image-size", type=int, default=224)
    add_augment_flags(p)
    p.set_defaults(run=cmd_augment)


def cmd_scan(args: argparse.Namespace) -> int:
    DataConfig(min_side=args.min_side)  # checks the value
    result = scan(args.data, args.min_side, progress_bar("scanning", quiet=args.json))
    if args.json:
        print(json.dumps({"root": str(result.root), "classes": result.classes, "counts": result.counts,
                          "images": len(result.items),
                          "problems": [{"file": p.path, "reason": p.reason} for p in result.problems]},
                         ensure_ascii=False))  # fmt: skip
        return 0
    print(f"{result.root}: {len(result.items)} usable images in {len(result.classes)} classes")
    for label, n in result.counts.items():
        print(f"  {n:6d}  {label}")
    if result.problems:
        print(f"{len(result.problems)} file(s) cannot be used:")
        for p in result.problems:
            print(f"  {p.path}: {p.reason}")
    return 0


# What each kind of flag means, in the command line's words (the pages have their own, translated).
HEALTH_WORDS = {
    "mislabel": "possibly the wrong species: a model that never saw it says {suggested} ({score:.0%})",
    "near_copy": "nearly the same photo as {other}, which is filed under {suggested}",
    "outlier": "unlike the rest of {label}: {score:.1f} times the usual distance to its nearest photo",
}


def cmd_health(args: argparse.Namespace) -> int:
    from fishcore.training.health import check_dataset

    root = Path(args.data).expanduser()
    flags = check_dataset(root, Paths.from_env().cache, progress_bar("reading photos", args.quiet or args.json))
    if args.json:
        print(json.dumps({"root": str(root), "flags": [f.to_dict() for f in flags]}, ensure_ascii=False))
        return 0
    for f in flags:
        print(f"{f.path}: " + HEALTH_WORDS[f.kind].format(**f.to_dict()))
    print(f"{len(flags)} photo(s) worth a look in {root}" if flags else f"nothing flagged in {root}")
    return 0


def _area():
    from fishcore.store.my_photos import DatasetArea
    from fishcore.store.workspace import Workspace

    ws = Workspace.from_env()
    return DatasetArea(ws.datasets, cache_dir=ws.scans)


def cmd_import(args: argparse.Namespace) -> int:
    area = _area()
    if args.dataset not in area.names():
        if args.dry_run:
            print(f"(the dataset '{args.dataset}' does not exist yet and would be created)")
        else:
            area.create(args.dataset)
            print(f"created dataset {area.path(args.dataset)}")
    sources = [Path(s) for s in args.source]
    files = [s for s in sources if s.is_file() and s.suffix.lower() != ".zip"]
    if files and not args.class_name:
        raise FishcoreError("loose photos need --class NAME (the species they show)")
    if args.dry_run and args.dataset not in area.names():
        area = _scratch_area(args.dataset)
    plans = []
    for source in [s for s in sources if s not in files] + ([files] if files else []):
        if isinstance(source, list):
            loaded = [(f.name, f.read_bytes()) for f in source]
            plans.append(area.plan_import(args.dataset, loaded, args.class_name, progress=progress_bar("reading photos")))
        else:
            plans.append(area.plan_import(args.dataset, source, args.class_name, progress=progress_bar(f"reading {source.name}")))
    added = 0
    for plan in plans:
        for origin, why in plan.skipped:
            print(f"  skipped {origin}: {why}")
        for origin, existing in plan.duplicates:
            print(f"  already there: {origin} (= {existing})")
        for origin, similar in plan.near_duplicates[:5]:
            print(f"  nearly the same as {similar} (added all the same): {origin}")
        if len(plan.near_duplicates) > 5:
            print(f"  ... and {len(plan.near_duplicates) - 5} more near-duplicates (added)")
        for label, n in plan.counts.items():
            print(f"  {'+' if label in plan.new_classes else ' '} {label}: {n} photo(s)")
        print(("dry run, nothing written: " if args.dry_run else "") + plan.summary())
        if not args.dry_run:
            added += len(area.apply_import(plan, progress=progress_bar("writing")))
    if not args.dry_run:
        print(f"added {added} photo(s) to {area.path(args.dataset)}")
        for warning in area.warnings(args.dataset):
            print(f"warning: {warning}")
    return 0


def _scratch_area(dataset: str):
    """A dry run into a dataset that does not exist yet: plan against an empty temporary one."""
    import tempfile

    from fishcore.store.my_photos import DatasetArea

    scratch = DatasetArea(tempfile.mkdtemp(prefix="fishcore-dry-run-"))
    scratch.create(dataset)
    return scratch


def cmd_datasets(args: argparse.Namespace) -> int:
    area = _area()
    names = [args.dataset] if args.dataset else area.names()
    if not names:
        print(f"no datasets yet in {area.root}: `python -m fishcore import SOURCE NAME` makes one")
    for name in names:
        counts = area.classes(name)
        print(f"{name}: {sum(counts.values())} photos in {len(counts)} classes ({area.path(name)})")
        for label, n in counts.items():
            print(f"  {label}: {n}")
        for warning in area.warnings(name):
            print(f"  warning: {warning}")
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    from fishcore.data.augment import preview

    check_int("n", args.n, 1, 1000)
    check_int("image_size", args.image_size, 32, 1024)
    views = preview(load_image(args.image), augment_config(args), args.n, args.seed, args.image_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, view in enumerate(views):
        name = f"view_{i:03d}.png"
        view.image.save(out / name)
        meta.append({"file": name, "params": view.params,
                     "matrix": None if view.matrix is None else view.matrix.round(6).tolist()})  # fmt: skip
    (out / "views.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"wrote {len(views)} views and views.json to {out}")
    return 0



