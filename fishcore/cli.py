"""`python -m fishcore`: scan, train, evaluate, predict and augment from the command line."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import ClassVar

from fishcore.config import (
    AUGMENT_SPEC,
    SETTING_CHOICES,
    SETTING_HELP,
    SPLITS,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    TrainConfig,
    check_int,
    check_number,
)
from fishcore.data.scan import load_image, scan
from fishcore.errors import ConfigError, FishcoreError, ImageError
from fishcore.events import EventName, Phase, StopReason
from fishcore.settings import Paths


def _add_augment_flags(p: argparse.ArgumentParser) -> None:
    """One flag per entry of the augmentation spec, so the CLI can never drift from it."""
    defaults = AugmentConfig()
    g = p.add_argument_group(
        "augmentation (defaults: the paper's, plus mild colour jitter; jitters at 0 give exactly the paper's)"
    )
    for spec in AUGMENT_SPEC:
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(defaults, spec.name)
        if spec.kind == "bool":
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=f"{spec.help} (default: {default})")
        elif spec.kind == "range":
            g.add_argument(
                flag,
                type=float,
                nargs=2,
                metavar=("MIN", "MAX"),
                default=list(default),
                help=f"{spec.help} (default: {default[0]} {default[1]})",
            )
        else:
            g.add_argument(flag, type=float, default=default, help=f"{spec.help} (default: {default})")


# Settings whose flag turns them off (their default is on and the flag predates the --x/--no-x form).
_OFF_FLAGS = {"pretrained": "--from-scratch", "calibrate": "--no-calibrate", "group_near_duplicates": "--no-group-duplicates"}
_SETTING_CONFIGS = (DataConfig, ModelConfig, TrainConfig)
_NOT_FLAGS = {"augment"}  # its own flags: _add_augment_flags


def _setting_fields() -> dict[str, dataclasses.Field]:
    """Every setting of the three configs by name (a name in two configs, seed, once)."""
    out: dict[str, dataclasses.Field] = {}
    for cls in _SETTING_CONFIGS:
        for f in dataclasses.fields(cls):
            if f.name not in _NOT_FLAGS:
                out.setdefault(f.name, f)
    return out


def _add_setting_flags(p: argparse.ArgumentParser) -> None:
    """One flag per setting of DataConfig, ModelConfig and TrainConfig, so `train` can never drift from them.

    Every flag defaults to None (not given): the config's own default applies, and `train` can tell what
    a user set (auto mode's note on --epochs).
    """
    defaults = {f.name: getattr(cls(), f.name) for cls in _SETTING_CONFIGS for f in dataclasses.fields(cls)}
    for name in _setting_fields():
        default, words = defaults[name], SETTING_HELP[name]
        if name in _OFF_FLAGS:
            p.add_argument(_OFF_FLAGS[name], dest=name, action="store_false", default=None, help=f"not: {words}")
        elif isinstance(default, bool):
            p.add_argument(
                flag_of(name), action=argparse.BooleanOptionalAction, default=None, help=f"{words} (default: {default})"
            )
        elif name in SETTING_CHOICES:
            p.add_argument(flag_of(name), choices=SETTING_CHOICES[name], default=None, help=f"{words} (default: {default})")
        else:
            kind = {int: int, float: float}.get(type(default), str)
            p.add_argument(flag_of(name), type=kind, default=None, help=f"{words} (default: {default})")
    _add_augment_flags(p)


def _configs_from_flags(args: argparse.Namespace) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The three configs from the flags given; a flag not given leaves the config's default."""
    given = {name: getattr(args, name) for name in _setting_fields() if getattr(args, name) is not None}

    def build(cls, **extra):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in names}, **extra)

    return build(DataConfig), build(ModelConfig), build(TrainConfig, augment=_augment_config(args))


def _augment_config(args: argparse.Namespace) -> AugmentConfig:
    values = {}
    for spec in AUGMENT_SPEC:
        v = getattr(args, spec.name)
        values[spec.name] = tuple(v) if spec.kind == "range" else v
    return AugmentConfig(**values)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the one-line form every other error of the CLI has."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# Settings whose flag is not simply --<name-with-dashes>.
_FLAGS = {
    "n": "-n",
    "pretrained": "--from-scratch",
    "calibrate": "--no-calibrate",
    "group_near_duplicates": "--no-group-duplicates",
    "class_name": "--class",
}


def flag_of(field: str) -> str:
    """The command-line flag of a config field, for error messages."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fishcore", description="Marine fish species classification by transfer learning.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scan", help="list classes, image counts and unusable files of a dataset folder")
    p.add_argument("data", help="folder with one sub-folder of photos per species")
    p.add_argument("--min-side", type=int, default=DataConfig.min_side)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("train", help="train, evaluate on the held-out test split and save a model folder")
    p.add_argument("data", help="folder with one sub-folder of photos per species")
    p.add_argument(
        "--out",
        required=True,
        help="model folder to write; when it already holds a model, a new version is saved beside it "
        "(OUT-v2, OUT-v3, ...): nothing is ever replaced",
    )
    _add_setting_flags(p)
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where fast mode keeps its feature cache (default: .cache; features and scans go under it)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--citation", default="", help="dataset citation to record in the model card")
    p.add_argument("--note", action="append", default=[], help="a note for the model card (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("evaluate", help="evaluate a model on a dataset folder or on its saved split")
    p.add_argument("model", help="model folder ('default' for the bundled model)")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--split", choices=SPLITS, default="all", help="all images of DATA, or a split saved with the model")
    p.add_argument("--json", action="store_true", help="print one JSON object (with per-image rows)")
    p.add_argument("--rows-csv", default=None, help="also write per-image rows (file,true,predicted,confidence) to this CSV")

    p = sub.add_parser(
        "verdicts",
        help="fit a saved model's 'not a fish' / 'unknown species' profile again from the photos it was trained on "
        "(for models saved before verdicts existed, or after moving their photos)",
    )
    p.add_argument("model", help="model folder ('default' for the bundled model)")
    p.add_argument("--data", default=None, help="the dataset folder it was trained on (default: the one in its card)")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("predict", help="top-k species for one or more photos")
    p.add_argument("model", help="model folder ('default' for the bundled model)")
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
    p.add_argument(
        "--together",
        action="store_true",
        help="the photos are several shots of one fish: give one combined answer (and each photo's own)",
    )
    p.add_argument("--log", action="store_true", help="record each answer in the catch log (photo, answer, verdict, place)")
    p.add_argument("--place", default="", help="with --log: where the catch was landed")
    p.add_argument("--count", default="1", help="with --log: how many fish each photo counts (default 1)")
    p.add_argument("--weight", default=None, help="with --log: their weight in kg")

    p = sub.add_parser("log", help="the catch log: list, export or confirm recorded answers")
    log_sub = p.add_subparsers(dest="log_command", required=True)
    for name, words in (("list", "entries, newest first"), ("export", "entries as CSV (to --out or standard output)")):
        q = log_sub.add_parser(name, help=words)
        q.add_argument("--since", default=None, help="first day, YYYY-MM-DD (UTC)")
        q.add_argument("--until", default=None, help="last day, YYYY-MM-DD (UTC), included")
        q.add_argument("--species", default=None, help="the answer's species or the one a user said it is")
        q.add_argument("--verdict", choices=("confident", "uncertain", "not_a_fish"), default=None)
        q.add_argument("--confirmed", action=argparse.BooleanOptionalAction, default=None,
                       help="only entries with (--confirmed) or without (--no-confirmed) a user's word")  # fmt: skip
        q.add_argument("--place", default=None)
        q.add_argument("--model", default=None, help="model name")
        q.add_argument("--limit", type=int, default=None)
        if name == "list":
            q.add_argument("--json", action="store_true", help="one JSON object per entry, one per line")
        else:
            q.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    q = log_sub.add_parser("confirm", help="give your word on an entry: right, wrong (with --species) or not_fish")
    q.add_argument("entry", help="the entry's id (as `log list` shows it; a unique beginning is enough)")
    q.add_argument("word", choices=("right", "wrong", "not_fish"))
    q.add_argument("--species", default=None, help="with wrong: the species it is (a known one or a new name)")
    q.add_argument("--by", default="command line", help="who says so")

    p = sub.add_parser(
        "compare",
        help="the paper's comparison on your photos: architectures, heads, fine-tuning depth, from scratch and a "
        "classical baseline, each trained and tested on the same split",
    )
    p.add_argument("data", help="folder with one sub-folder of photos per species")
    p.add_argument("--out", required=True, help="folder for results.json and results.csv (written after every row)")
    p.add_argument("--budget", type=float, default=30.0, help="training seconds per network, after its features")
    p.add_argument("--seed", type=int, default=0, help="which seeded split to use")
    p.add_argument(
        "--group-pattern", default=None, help=r"regex on file names; same first group = same split (e.g. 'fish_(\d+)_')"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")

    p = sub.add_parser("explain", help="a Grad-CAM heat map: where in a photo the model found its evidence")
    p.add_argument("model", help="model folder ('default' for the bundled model)")
    p.add_argument("image", help="the photo")
    p.add_argument("--out", required=True, help="image file to write (.png or .jpg): the photo with the heat map over it")
    p.add_argument("--class", dest="class_name", default=None, help="explain this species (default: the predicted one)")
    p.add_argument("--opacity", type=float, default=0.5, help="how strongly the heat map covers the photo (0-1)")

    p = sub.add_parser(
        "import",
        help="bring photos into a managed dataset (a zip or folder with one sub-folder per species, or loose photos)",
    )
    p.add_argument("source", nargs="+", help="a .zip, a folder, or photo files (loose photos need --class)")
    p.add_argument("dataset", help="name of the dataset in the workspace's dataset area (created if new)")
    p.add_argument("--class", dest="class_name", default=None, help="put every photo into this class")
    p.add_argument("--dry-run", action="store_true", help="only show what would be added, skipped and repeated")

    p = sub.add_parser("datasets", help="the managed datasets: classes, photo counts and warnings")
    p.add_argument("dataset", nargs="?", help="one dataset (default: list them all)")

    p = sub.add_parser("export", help="write a model as ONNX (with labels and preprocessing) or as a zip")
    p.add_argument("model", help="model folder ('default' for the bundled model)")
    p.add_argument("--format", choices=("onnx", "zip"), required=True)
    p.add_argument("--out", required=True, help="file to write (.onnx or .zip)")

    p = sub.add_parser("import-model", help="add a model zip made by `export --format zip` to the models folder")
    p.add_argument("zip", help="the model .zip")
    p.add_argument("--name", default=None, help="model name (default: the folder name inside the zip)")

    p = sub.add_parser("augment", help="write N augmented views of a photo, as training would see them")
    p.add_argument("image")
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=224)
    _add_augment_flags(p)
    return parser


def _model_dir(name: str) -> Path:
    return Paths.from_env().bundled_model if name == "default" else Path(name)


def cmd_scan(args: argparse.Namespace) -> int:
    DataConfig(min_side=args.min_side)  # checks the value
    result = scan(args.data, args.min_side, _bar("scanning", quiet=args.json))
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(result.root),
                    "classes": result.classes,
                    "counts": result.counts,
                    "images": len(result.items),
                    "problems": [{"file": p.path, "reason": p.reason} for p in result.problems],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(f"{result.root}: {len(result.items)} usable images in {len(result.classes)} classes")
    for label, n in result.counts.items():
        print(f"  {n:6d}  {label}")
    if result.problems:
        print(f"{len(result.problems)} file(s) cannot be used:")
        for p in result.problems:
            print(f"  {p.path}: {p.reason}")
    return 0


def _bar(desc: str, quiet: bool = False):
    """A (done, total) progress callback drawing a tqdm bar on stderr."""
    if quiet:
        return None
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


class _ProgressBars:
    """The run's event stream as tqdm bars on stderr: one per counted phase, one for training with its losses."""

    PHASES: ClassVar[dict[str, str]] = {
        Phase.SCANNING: "scanning",
        Phase.CACHING: "caching features",
        Phase.EVALUATING: "evaluating",
    }

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.phases = {phase: _bar(words) for phase, words in self.PHASES.items()}
        self.bar = None
        self.val = ""

    def __call__(self, e) -> None:
        if e.name == EventName.PHASE and e.phase in self.phases and e.total:
            self.phases[e.phase](e.done, e.total)
        elif e.name == EventName.TRAIN_START:
            self.bar = self._tqdm(total=e.total_iterations, desc="training", unit="it", file=sys.stderr)
        elif e.name == EventName.BATCH_END and self.bar is not None:
            self.bar.update(e.iteration - self.bar.n)
            self.bar.set_postfix_str(f"epoch {e.epoch} loss {e.loss:.3f} acc {e.accuracy:.2f}{self.val}")
        elif e.name == EventName.VALIDATION:
            self.val = f" | val loss {e.val_loss:.3f} acc {e.val_accuracy:.3f}"
        elif e.name == EventName.TRAIN_END and self.bar is not None:
            self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    data_cfg, model_cfg, train_cfg = _configs_from_flags(args)
    # Only now torch loads (several seconds): a bad setting above has already been answered.
    from fishcore.runtime import resolve_device
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    resolve_device(args.device)  # a bad --device fails now, not after the features are cached
    if train_cfg.mode == "auto":
        # Auto mode chooses both on the validation split: say so (once the settings are valid) instead of ignoring them silently.
        unused = [flag for flag, value in (("--epochs", args.epochs), ("--freeze-until", args.freeze_until)) if value is not None]
        if unused:
            print(
                f"note: {' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used in auto mode, which trains "
                "until validation stops improving and picks its own freeze point; add --mode fast to set them",
                file=sys.stderr,
            )
    options = RunOptions(out_dir=args.out, device=args.device, cache_dir=args.cache_dir, notes=tuple(args.note),
                         citation=args.citation)  # fmt: skip
    run = TrainingRun(data_cfg, model_cfg, train_cfg, options, listeners=[] if args.quiet else [_ProgressBars()])

    def on_sigint(signum, frame) -> None:  # first Ctrl-C: finish the batch and keep the best model
        if run.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping (Ctrl-C again to abort)...", file=sys.stderr)
        run.request_stop(keep=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        outcome = train_folder(args.data, run)
    finally:
        signal.signal(signal.SIGINT, previous)
    r, card = outcome.result, outcome.card
    if card is None:
        print("stopped before training: nothing was saved")
        return 130 if r.stop_reason == StopReason.USER else 0
    print(
        f"{card.training.mode} mode: {r.epochs_run} epoch(s), {r.iterations} iterations in {r.seconds:.1f}s "
        f"({STOP_WORDS[r.stop_reason]}); best val loss {r.best_val_loss:.4f}; temperature {card.temperature:.3f}"
    )
    for c in card.training.candidates:
        chosen = "  <- chosen" if c["name"] == card.training.recipe else ""
        print(f"  candidate {c['name']}: validation macro-F1 {c['val_macro_f1']:.4f} in {c['seconds']:.0f}s{chosen}")
    if outcome.test_report is not None:
        t = outcome.test_report
        print(f"test ({t.n} images): accuracy {t.accuracy:.4f}  macro-F1 {t.macro_f1:.4f}")
    print(promise_words(card))
    print(f"saved {outcome.model_dir}" if outcome.model_dir else "nothing was saved")
    return 0


STOP_WORDS = {
    StopReason.COMPLETED: "completed",
    StopReason.EARLY_STOPPING: "stopped early: validation loss stopped improving",
    StopReason.USER: "stopped by request",
    StopReason.BUDGET: "the time budget ran out",
}


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

    predictor = Predictor.load(_model_dir(args.model))
    root = Path(args.data).expanduser()
    samples = evaluation_samples(predictor.card, root, args.split)
    report = evaluate_files(predictor, samples, progress=_bar("evaluating", args.json), root=root)
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


def cmd_verdicts(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from fishcore.config import from_dict
    from fishcore.data.scan import group_items, resolve
    from fishcore.errors import DatasetError
    from fishcore.inference.predict import Predictor, fit_verdict_profile
    from fishcore.store.model_files import HELDOUT_FILE, load_model, save_openset
    from fishcore.training.heldout import VALIDATION, HeldOut, settle

    model_dir = Path(_model_dir(args.model))
    model, card = load_model(model_dir)
    root = Path(args.data).expanduser() if args.data else card.data_root
    if root is None or not root.is_dir():
        raise DatasetError(f"the photos this model was trained on are not at {root}; pass --data FOLDER")

    def samples(part: str) -> list[tuple[str, int]]:
        return [(str(path), card.classes.index(label)) for path, label in resolve(root, card.split.get(part, []))]

    predictor = Predictor(model, card, engine="auto")
    profile = fit_verdict_profile(predictor, samples("train"), samples("val"), _bar("reading photos", args.quiet))
    # The confidence threshold, temperature and prediction sets again, from the validation photos (a saved
    # model cannot refit folds: training adds out-of-fold predictions, see fishcore.training.heldout).
    val = samples("val")
    logits = predictor.score_files([p for p, _ in val], progress=_bar("validation photos", args.quiet)).logits
    # The groups of its split (near-copies, tracks): photos of one count as one in the threshold's margin.
    data_cfg = from_dict(DataConfig, card.config.get("data"))
    scanned = scan(root, data_cfg.min_side, cache_dir=Paths.from_env().cache / "scans")
    group_of = dict(zip((item.path for item in scanned.items), group_items(scanned.items, data_cfg), strict=True))
    groups = np.array([group_of.get(rel, -1 - n) for n, rel in enumerate(card.split.get("val", []))])
    held = HeldOut(logits, torch.tensor([t for _, t in val], dtype=torch.long), [VALIDATION] * len(val), groups)
    settle(card, held)
    held.save(model_dir / HELDOUT_FILE)
    save_openset(model_dir, card, profile.reference, profile.card_entry())
    print(
        f"{model_dir}: verdict profile from {len(profile.reference)} training photos; distance threshold "
        f"{profile.distance_threshold:.4f}, fish-likeness threshold {profile.fish_threshold:.4f}"
    )
    print(f"{model_dir}: {promise_words(card)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from fishcore.inference.predict import Predictor

    check_int("top_k", args.top_k, 1)
    if args.threshold is not None:
        check_number("threshold", args.threshold, 0, 1)
    # The app's engine (onnxruntime, about 2.7x faster per photo) pays its one-off export from a few photos on;
    # torch starts sooner for one or two.
    predictor = Predictor.load(_model_dir(args.model), engine="auto" if len(args.images) > 2 else "torch")
    if args.together:
        together, singles = predictor.predict_together(args.images, top_k=args.top_k, threshold=args.threshold)
        if args.json:
            print(json.dumps({"together": together.to_dict(), "photos": [p.to_dict() for p in singles]}, ensure_ascii=False))
        else:
            for line in (_prediction_line(p) for p in [together, *singles]):
                print(line)
        return 0
    failed = []

    def unreadable(n: int, exc: FishcoreError) -> None:
        failed.append(n)
        print(f"error: {args.images[n]}: {exc}", file=sys.stderr)

    # One batched pass; an unreadable photo is reported and the others are still predicted.
    if args.log:  # a bad place, count or weight is answered before any photo is looked at
        from fishcore.store.catchlog import check_count, check_place, check_weight

        check_place(args.place), check_count(args.count), check_weight(args.weight)
    results = predictor.predict(args.images, top_k=args.top_k, threshold=args.threshold, on_error=unreadable)
    if args.log:
        _log_answers(args, predictor, results)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    else:
        for r in results:
            print(_prediction_line(r))
    return 1 if failed else 0


def _log_filter(args: argparse.Namespace):
    from datetime import date

    from fishcore.store.catchlog import LogFilter

    def day(flag: str, value: str | None):
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ConfigError(flag, value, "must be a date as YYYY-MM-DD") from None

    if args.limit is not None:
        check_int("limit", args.limit, 1)
    return LogFilter(day("since", args.since), day("until", args.until), args.species, args.verdict, args.confirmed,
                     args.place, args.model, args.limit)  # fmt: skip


def cmd_log(args: argparse.Namespace) -> int:
    from fishcore.store.catchlog import CatchLog, CatchLogError, to_csv

    log = CatchLog()
    log.flush_spool()
    if args.log_command == "confirm":
        matches = [e for e in log.entries() if e.id.startswith(args.entry)] if args.entry else []
        if len(matches) != 1:
            raise CatchLogError(f"{'no' if not matches else 'more than one'} catch log entry starts with {args.entry!r}")
        log.set_word(matches[0].id, args.word, args.species, who=args.by)
        print(f"{matches[0].id}: {args.word}{' (' + args.species + ')' if args.word == 'wrong' else ''}")
        return 0
    items = log.entries(_log_filter(args))
    if args.log_command == "export":
        text = to_csv(items)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"{len(items)} entries written to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    for e in items:
        if args.json:
            row = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in e.__dict__.items()}  # every date as text
            print(json.dumps(row, ensure_ascii=False))
            continue
        word = {None: "no word yet", "right": "right", "not_fish": "not a fish"}.get(e.word, f"wrong: {e.true_species}")
        unsure = e.verdict != "confident" and len(e.candidates) > 1 and e.set_coverage is not None
        one_of = f" (one of: {', '.join(s for s, _ in e.candidates)}, {e.set_coverage:.0%})" if unsure else ""
        print(f"{e.id[:8]}  {e.created_at:%Y-%m-%d %H:%M}  {e.label} {e.confidence:.0%} {e.verdict}{one_of}  x{e.count}  "
              f"{e.place or '-'}  {e.model_name}  [{word}]")  # fmt: skip
    if not args.json:
        print(f"{len(items)} entries ({log.describe()}{f'; {log.pending()} waiting in the spool' if log.pending() else ''})")
    return 0


def _log_answers(args: argparse.Namespace, predictor, results) -> None:
    """predict --log: each answer into the catch log, with its photo (checked first: a bad value writes nothing)."""
    from fishcore.store.catchlog import Answer, CatchLog, check_count, check_place, check_weight, model_checksum
    from fishcore.store.model_files import CARD_FILE

    place, count, weight = check_place(args.place), check_count(args.count), check_weight(args.weight)
    log = CatchLog()
    model_dir = _model_dir(args.model)
    checksum = model_checksum(Path(model_dir) / CARD_FILE)
    for r in results:
        threshold = predictor.openset.distance_threshold if predictor.openset else None
        answer = Answer(r.label, r.confidence, r.verdict, r.reason, list(r.top), r.distance, threshold, list(r.candidates),
                        r.coverage, args.threshold if args.threshold is not None else predictor.card.threshold)  # fmt: skip
        done = log.record(Path(r.file).read_bytes(), answer, Path(model_dir).name, checksum, place, count, weight, "command line")
        note = " (the database is away: kept in the spool)" if done.spooled else ""
        print(f"logged {r.file} as {done.entry_id[:8]}{note}", file=sys.stderr)


def _prediction_line(r) -> str:
    """One prediction in words, as the CLI prints it."""
    from fishcore.inference.openset import CONFIDENT, LOW_CONFIDENCE, NOT_A_FISH, REASON_WORDS

    if r.verdict == NOT_A_FISH:
        return f"{r.file}: not a fish ({REASON_WORDS[r.reason]} Closest species: {r.label} {r.confidence:.1%})"
    others = ", ".join(f"{label} {p:.1%}" for label, p in r.top[1:])
    flag = "" if r.verdict == CONFIDENT else f"  (not sure: {REASON_WORDS[r.reason]})"
    if r.reason == LOW_CONFIDENCE and len(r.candidates) > 1:
        flag += f"  one of: {', '.join(label for label, _ in r.candidates)} ({r.coverage:.0%})"
    return f"{r.file}: {r.label} {r.confidence:.1%}{flag}" + (f"  [then {others}]" if others else "")


def promise_words(card) -> str:
    """What the model's "confident" promises, and what backs it, in one line."""
    from fishcore.inference.calibration import Promise

    p = Promise.from_card(card.promise)
    if p is None:
        return (f"confident from {card.threshold:.0%}: one fixed threshold, chosen before thresholds were chosen per "
                "model; `fishcore verdicts MODEL` chooses this model's own from its validation photos")  # fmt: skip
    share = f"{p.confident_right} of {p.confident} confident answers right on {p.photos} held-out photos"
    if not p.backed:
        return f"confident from {p.threshold:.1%}: too few held-out photos to promise {p.precision:.0%} ({share})"
    kept = f"{p.confident_right} of {p.right} right answers confident"
    return (f"confident from {p.threshold:.1%}: at least {p.precision:.0%} of confident answers right "
            f"({p.level:.0%} sure; {share}; {kept})")  # fmt: skip


def cmd_compare(args: argparse.Namespace) -> int:
    from fishcore.training.compare import compare

    check_number("budget", args.budget, 5, 86_400)
    data_cfg = DataConfig(seed=args.seed, group_pattern=args.group_pattern)
    result = compare(args.data, args.out, args.budget, args.seed, data_cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(f"{result.test_photos} test photos, {len(result.classes)} species, {result.processor}; results in {args.out}")
    for r in result.rows:
        if r.skipped:
            print(f"  {r.name:<26} skipped: {r.skipped}")
            continue
        params = f"{r.trained_params:,}/{r.total_params:,} params" if r.total_params else "no network"
        print(
            f"  {r.name:<26} accuracy {r.accuracy:.3f}  macro-F1 {r.macro_f1:.3f}  trained in {r.train_seconds:.0f} s  "
            f"{params}  {r.latency_ms:.1f} ms/photo"
            + (f"  (features of {r.features_from}: {r.feature_seconds:.0f} s counted)" if r.features_from else "")
        )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from fishcore.inference.explain import CAPTION, explain, overlay
    from fishcore.inference.predict import Predictor

    check_number("opacity", args.opacity, 0, 1)
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError("out", args.out, "must end in .png, .jpg or .jpeg")
    predictor = Predictor.load(_model_dir(args.model))
    try:
        result = explain(predictor, args.image, args.class_name)
    except ImageError as exc:
        raise ImageError(f"{args.image}: {exc}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    overlay(result.image, result.heat, args.opacity).save(out)
    print(f"{args.image}: heat map for {result.label} ({result.probability:.1%}) written to {out}")
    print(CAPTION)
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    from fishcore.data.augment import preview

    check_int("n", args.n, 1, 1000)
    check_int("image_size", args.image_size, 32, 1024)
    cfg = _augment_config(args)
    views = preview(load_image(args.image), cfg, args.n, args.seed, args.image_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, view in enumerate(views):
        name = f"view_{i:03d}.png"
        view.image.save(out / name)
        meta.append(
            {"file": name, "params": view.params, "matrix": None if view.matrix is None else view.matrix.round(6).tolist()}
        )
    (out / "views.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"wrote {len(views)} views and views.json to {out}")
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
        area = _scratch_area(area, args.dataset)
    plans = []
    for source in [s for s in sources if s not in files] + ([files] if files else []):
        if isinstance(source, list):
            loaded = [(f.name, f.read_bytes()) for f in source]
            plans.append(area.plan_import(args.dataset, loaded, args.class_name, progress=_bar("reading photos")))
        else:
            plans.append(area.plan_import(args.dataset, source, args.class_name, progress=_bar(f"reading {source.name}")))
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
            added += len(area.apply_import(plan, progress=_bar("writing")))
    if not args.dry_run:
        print(f"added {added} photo(s) to {area.path(args.dataset)}")
        for warning in area.warnings(args.dataset):
            print(f"warning: {warning}")
    return 0


def _scratch_area(area, dataset: str):
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


def cmd_export(args: argparse.Namespace) -> int:
    from fishcore.store.export import export_onnx, export_zip

    if args.format == "onnx":
        for path in export_onnx(_model_dir(args.model), args.out):
            print(f"wrote {path}")
    else:
        print(f"wrote {export_zip(_model_dir(args.model), args.out)}")
    return 0


def cmd_import_model(args: argparse.Namespace) -> int:
    from fishcore.store.export import import_model_zip
    from fishcore.store.workspace import Workspace

    path = Path(args.zip)
    if not path.is_file():
        raise FishcoreError(f"file not found: {path}")
    print(f"imported as {import_model_zip(path, Workspace.from_env().models, args.name)}")
    return 0


COMMANDS = {
    "import": cmd_import,
    "datasets": cmd_datasets,
    "export": cmd_export,
    "import-model": cmd_import_model,
    "scan": cmd_scan,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "log": cmd_log,
    "verdicts": cmd_verdicts,
    "explain": cmd_explain,
    "compare": cmd_compare,
    "augment": cmd_augment,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {flag_of(exc.field)} {exc.value!r}: {exc.reason}", file=sys.stderr)
        return 2
    except FishcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ...: the user can act on these
        print(f"error: {exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", file=sys.stderr)
        return 2
