"""Training: `train`, `verdicts` (choose a saved model's verdicts again), `compare` (the paper's comparison)."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from fishcore.cli.common import MODEL_HELP, ProgressBars, model_dir, progress_bar, promise_words
from fishcore.cli.data import DATA_HELP
from fishcore.cli.flags import add_setting_flags, configs_from_flags
from fishcore.config import DataConfig, check_number
from fishcore.events import StopReason
from fishcore.training.run import TRAIN_SETTINGS

STOP_WORDS = {
    StopReason.COMPLETED: "completed",
    StopReason.EARLY_STOPPING: "stopped early: validation loss stopped improving",
    StopReason.USER: "stopped by request",
    StopReason.BUDGET: "the time budget ran out",
}


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train, evaluate on the held-out test split and save a model folder")
    p.add_argument("data", help=DATA_HELP)
    p.add_argument(
        "--out",
        required=True,
        help="model folder to write; when it already holds a model, a new version is saved beside it "
        "(OUT-v2, OUT-v3, ...): nothing is ever replaced",
    )
    add_setting_flags(p)
    p.add_argument("--cache-dir", default=None,
                   help="where fast mode keeps its feature cache (default: .cache; features and scans go under it)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--citation", default="", help="dataset citation to record in the model card")
    p.add_argument("--note", action="append", default=[], help="a note for the model card (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser(
        "verdicts",
        help="choose a saved model's verdicts again ('not a fish', 'unknown species', its confidence threshold and "
        "prediction sets) from the photos it was trained on (for a model saved before they existed, or moved)",
    )
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", default=None, help="the dataset folder it was trained on (default: the one in its card)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_verdicts)

    p = sub.add_parser(
        "compare",
        help="the paper's comparison on your photos: architectures, heads, fine-tuning depth, from scratch and a "
        "classical baseline, each trained and tested on the same split",
    )
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--out", required=True, help="folder for results.json and results.csv (written after every row)")
    p.add_argument("--seconds-per-network", type=float, default=30.0, help="training seconds per network, after its features")
    p.add_argument("--seed", type=int, default=0, help="which seeded split to use")
    p.add_argument("--group-pattern", default=None, help=TRAIN_SETTINGS["group_pattern"].rule.help)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.set_defaults(run=cmd_compare)


def cmd_train(args: argparse.Namespace) -> int:
    data_cfg, model_cfg, train_cfg = configs_from_flags(args)
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
    run = TrainingRun(data_cfg, model_cfg, train_cfg, options, listeners=[] if args.quiet else [ProgressBars()])

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


def cmd_verdicts(args: argparse.Namespace) -> int:
    from fishcore.training.pipeline import refit_verdicts

    bars: dict = {}

    def progress(what: str, done: int, total: int) -> None:
        if not args.quiet:
            bars.setdefault(what, progress_bar(what))(done, total)

    folder = model_dir(args.model)
    done = refit_verdicts(folder, args.data, progress)
    profile = done.profile
    print(
        f"{folder}: verdict profile from {len(profile.reference)} training photos; distance threshold "
        f"{profile.distance_threshold:.4f}, fish-likeness threshold {profile.fish_threshold:.4f}"
    )
    print(f"{folder}: {promise_words(done.card)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from fishcore.training.compare import compare

    check_number("seconds_per_network", args.seconds_per_network, 5, 86_400)
    data_cfg = DataConfig(seed=args.seed, group_pattern=args.group_pattern)
    result = compare(args.data, args.out, args.seconds_per_network, args.seed, data_cfg,
                     log=lambda m: print(m, file=sys.stderr, flush=True))  # fmt: skip
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
