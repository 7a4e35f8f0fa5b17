"""Models: `models list|activate|rollback|delete` (the Models page's actions), `export` (ONNX, an ONNX zip, or a
model zip) and `import-model`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fishcore.cli.common import MODEL_HELP, model_dir
from fishcore.errors import FishcoreError


def add_commands(sub) -> None:
    p = sub.add_parser("models", help="the saved models: list them, make one active (what Predict, the field server "
                       "and every phone use), roll back, delete")  # fmt: skip
    actions = p.add_subparsers(dest="models_command", required=True)
    q = actions.add_parser("list", help="every model and its versions, which is active, their scores")
    q.add_argument("--json", action="store_true", help="one JSON object per model, one per line")
    q.add_argument("--no-field", action="store_true", help="skip the score on your kept-back catch log photos (faster)")
    q.set_defaults(run=cmd_models)
    q = actions.add_parser("activate", help="make a model active: phones take it at their next sync")
    q.add_argument("name", help="NAME (its newest version), NAME@VERSION, a folder name like kakap-v3, or 'default'")
    q.set_defaults(run=cmd_models)
    q = actions.add_parser("rollback", help="make the model that was active before the current one active again")
    q.set_defaults(run=cmd_models)
    q = actions.add_parser("delete", help="delete a saved model for good (never the bundled one; other versions stay)")
    q.add_argument("name", help="NAME@VERSION or a folder name like kakap-v3")
    q.add_argument("--yes", action="store_true", help="really delete it (without it, nothing is deleted)")
    q.set_defaults(run=cmd_models)

    p = sub.add_parser("export", help="write a model as ONNX (with labels and preprocessing) or as a zip")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--format", choices=("onnx", "onnx-zip", "zip"), required=True,
                   help="onnx: OUT.onnx, OUT.labels.txt and OUT.preprocessing.json; onnx-zip: those three in one zip "
                   "(the Models page's Export ONNX); zip: the model folder, for import-model")  # fmt: skip
    p.add_argument("--out", required=True, help="file to write (.onnx or .zip)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("import-model", help="add a model zip made by `export --format zip` to the models folder")
    p.add_argument("zip", help="the model .zip")
    p.add_argument("--name", default=None, help="model name (default: the folder name inside the zip)")
    p.set_defaults(run=cmd_import_model)


def cmd_models(args: argparse.Namespace) -> int:
    import json

    from fishcore.store.model_files import delete_model
    from fishcore.store.workspace import Workspace

    ws = Workspace.from_env()
    if args.models_command == "activate":
        path = ws.find_model(args.name)
        ws.set_active_model(path, why="models activate")
        print(f"{path.name} is the active model: Predict uses it, and phones take it at their next sync")
        return 0
    if args.models_command == "rollback":
        before = ws.active_model()
        path = ws.rollback()
        print(f"{path.name} is the active model again (was {before.name if before else 'none'}); phones take it at their "
              "next sync")  # fmt: skip
        return 0
    if args.models_command == "delete":
        path = ws.find_model(args.name)
        active = ws.active_model()
        is_active = active is not None and active.resolve() == path.resolve()
        if not args.yes:
            extra = " It is the active model: the bundled model (or the newest other) takes its place." if is_active else ""
            raise FishcoreError(f"this deletes {path.name} for good.{extra} Add --yes to do it")
        delete_model(path)
        now = ws.active_model()
        print(f"deleted {path.name}" + (f"; the active model is now {now.name}" if is_active and now is not None else ""))
        return 0
    from fishcore.store.catchlog import CatchLog
    from fishcore.training.versions import list_versions

    rows = list_versions(ws, None if args.no_field else CatchLog(), with_field=not args.no_field)
    for r in rows:
        if args.json:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
            continue
        if not r.usable:
            print(f"  {r.name}  cannot be used: {r.problem}")
            continue
        test = f"test accuracy {r.test_accuracy:.1%}" if r.test_accuracy is not None else "no test score"
        field = f"; your kept-back photos {r.field_right}/{r.field_total}" if r.field_total else ""
        promise = {True: "promise backed", False: "promise not backed", None: "no promise"}[r.promise_backed]
        print(f"{'*' if r.active else ' '} {r.name}  ({r.family} v{r.version})  {len(r.species)} species  {test}{field}  "
              f"{promise}  {r.mode} mode  {r.created[:16]}")  # fmt: skip
    if not args.json:
        print("* the active model (Predict, the field server and every phone use it)" if rows else "no models yet")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fishcore.inference.package import export_onnx, onnx_bundle
    from fishcore.store.export import export_zip, write_file

    folder = model_dir(args.model)
    if args.format == "onnx":
        for path in export_onnx(folder, args.out):
            print(f"wrote {path}")
    elif args.format == "onnx-zip":
        print(f"wrote {write_file(args.out, onnx_bundle(folder))}")
    else:
        print(f"wrote {export_zip(folder, args.out)}")
    return 0


def cmd_import_model(args: argparse.Namespace) -> int:
    from fishcore.store.export import import_model_zip
    from fishcore.store.workspace import Workspace

    path = Path(args.zip)
    if not path.is_file():
        raise FishcoreError(f"file not found: {path}")
    print(f"imported as {import_model_zip(path, Workspace.from_env().models, args.name)}")
    return 0
