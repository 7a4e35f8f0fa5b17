"""Model files: `export` (ONNX, an ONNX zip, or a model zip) and `import-model`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fishcore.cli.common import MODEL_HELP, model_dir
from fishcore.errors import FishcoreError


def add_commands(sub) -> None:
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


def cmd_export(args: argparse.Namespace) -> int:
    from fishcore.store.export import export_onnx, export_zip, onnx_bundle, write_file

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
