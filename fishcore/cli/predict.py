"""Using a model: `predict` (and record in the catch log), `evaluate`, `explain`."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from fishcore.cli.common import MODEL_HELP, model_dir, progress_bar
from fishcore.config import SPLITS, check_int, check_number
from fishcore.errors import ConfigError, FishcoreError, ImageError


def add_commands(sub) -> None:
    p = sub.add_parser("predict", help="top-k species for one or more photos")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="confidence below this is 'uncertain' (default: from the model card); photos unlike the "
        "training photos are 'uncertain' or 'not_a_fish' whatever their confidence",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--together", action="store_true",
                   help="the photos are several shots of one fish: give one combined answer (and each photo's own)")  # fmt: skip
    p.add_argument("--log", action="store_true", help="record each answer in the catch log (photo, answer, verdict, place)")
    p.add_argument("--place", default="", help="with --log: where the catch was landed")
    p.add_argument("--count", default="1", help="with --log: how many fish each photo counts (default 1)")
    p.add_argument("--weight", default=None, help="with --log: their weight in kg")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("evaluate", help="evaluate a model on a dataset folder or on its saved split")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="dataset folder")
    p.add_argument("--split", choices=SPLITS, default="all", help="all images of DATA, or a split saved with the model")
    p.add_argument("--json", action="store_true", help="print one JSON object (with per-image rows)")
    p.add_argument("--rows-csv", default=None, help="also write per-image rows (file,true,predicted,confidence) to this CSV")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("explain", help="a Grad-CAM heat map: where in a photo the model found its evidence")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("image", help="the photo")
    p.add_argument("--out", required=True, help="image file to write (.png or .jpg): the photo with the heat map over it")
    p.add_argument("--class", dest="class_name", default=None, help="explain this species (default: the predicted one)")
    p.add_argument("--opacity", type=float, default=0.5, help="how strongly the heat map covers the photo (0-1)")
    p.set_defaults(run=cmd_explain)


def cmd_predict(args: argparse.Namespace) -> int:
    from fishcore.inference.predict import Predictor

    check_int("top_k", args.top_k, 1)
    if args.threshold is not None:
        check_number("threshold", args.threshold, 0, 1)
    if args.log:  # a bad place, count or weight is answered before any photo is looked at
        from fishcore.store.catchlog import check_count, check_place, check_weight

        check_place(args.place), check_count(args.count), check_weight(args.weight)
    # The app's engine (onnxruntime, about 2.7x faster per photo) pays its one-off export from a few photos on;
    # torch starts sooner for one or two.
    predictor = Predictor.load(model_dir(args.model), engine="auto" if len(args.images) > 2 else "torch")
    if args.together:
        together, singles = predictor.predict_together(args.images, top_k=args.top_k, threshold=args.threshold)
        if args.json:
            print(json.dumps({"together": together.to_dict(), "photos": [p.to_dict() for p in singles]}, ensure_ascii=False))
        else:
            for line in (prediction_line(p) for p in [together, *singles]):
                print(line)
        return 0
    failed = []

    def unreadable(n: int, exc: FishcoreError) -> None:
        failed.append(n)
        print(f"error: {args.images[n]}: {exc}", file=sys.stderr)

    # One batched pass; an unreadable photo is reported and the others are still predicted.
    results = predictor.predict(args.images, top_k=args.top_k, threshold=args.threshold, on_error=unreadable)
    if args.log:
        _log_answers(args, predictor, results)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    else:
        for r in results:
            print(prediction_line(r))
    return 1 if failed else 0


def _log_answers(args: argparse.Namespace, predictor, results) -> None:
    """predict --log: each answer into the catch log, with its photo (checked first: a bad value writes nothing)."""
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.model_files import model_checksum

    log = CatchLog()
    folder = model_dir(args.model)
    checksum = model_checksum(folder)
    for r in results:
        done = log.record(Path(r.file).read_bytes(), predictor.answer(r, args.threshold), folder.name, checksum, args.place,
                          args.count, args.weight, "command line")  # fmt: skip
        note = " (the database is away: kept in the spool)" if done.spooled else ""
        print(f"logged {r.file} as {done.entry_id[:8]}{note}", file=sys.stderr)


def prediction_line(r) -> str:
    """One prediction in words, as the CLI prints it."""
    from fishcore.inference.openset import CONFIDENT, LOW_CONFIDENCE, NOT_A_FISH, REASON_WORDS

    if r.verdict == NOT_A_FISH:
        return f"{r.file}: not a fish ({REASON_WORDS[r.reason]} Closest species: {r.label} {r.confidence:.1%})"
    others = ", ".join(f"{label} {p:.1%}" for label, p in r.top[1:])
    flag = "" if r.verdict == CONFIDENT else f"  (not sure: {REASON_WORDS[r.reason]})"
    if r.reason == LOW_CONFIDENCE and len(r.candidates) > 1:
        flag += f"  one of: {', '.join(label for label, _ in r.candidates)} ({r.coverage:.0%})"
    return f"{r.file}: {r.label} {r.confidence:.1%}{flag}" + (f"  [then {others}]" if others else "")


def _print_report(report) -> None:
    print(
        f"{report.n} images  accuracy {report.accuracy:.4f}  macro precision {report.macro_precision:.4f}  "
        f"recall {report.macro_recall:.4f}  F1 {report.macro_f1:.4f}"
    )
    print(f"MSE {report.mse:.5f}  RMSE {report.rmse:.5f}  MAE {report.mae:.5f}  (one-hot targets vs probabilities)")
    width = max(len(c) for c in report.classes)
    print(f"{'class':<{width}}  precision  recall     f1  support")
    for c, m in report.per_class.items():
        print(f"{c:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}  {m['support']:7d}")
    print("confusion matrix (rows: true, columns: predicted, in class order above):")
    for c, row in zip(report.classes, report.confusion_matrix, strict=True):
        print(f"{c:<{width}}  " + " ".join(f"{v:4d}" for v in row))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fishcore.inference.evaluate import evaluate_files, evaluation_samples
    from fishcore.inference.predict import Predictor

    predictor = Predictor.load(model_dir(args.model))
    root = Path(args.data).expanduser()
    samples = evaluation_samples(predictor.card, root, args.split)
    report = evaluate_files(predictor, samples, progress=progress_bar("evaluating", args.json), root=root)
    if args.rows_csv:
        with open(args.rows_csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(report.rows[0]))
            writer.writeheader()
            writer.writerows(report.rows)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from fishcore.inference.explain import CAPTION, explain, overlay
    from fishcore.inference.predict import Predictor

    check_number("opacity", args.opacity, 0, 1)
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError("out", args.out, "must end in .png, .jpg or .jpeg")
    predictor = Predictor.load(model_dir(args.model))
    try:
        result = explain(predictor, args.image, args.class_name)
    except ImageError as exc:
        raise ImageError(f"{args.image}: {exc}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    overlay(result.image, result.heat, args.opacity).save(out)
    print(f"{args.image}: heat map for {result.label} ({result.probability:.1%}) written to {out}")
    print(CAPTION)
    return 0
