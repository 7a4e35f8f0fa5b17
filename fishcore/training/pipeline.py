"""Folder of photos in, trained + evaluated + saved model out: the one entry point the CLI and the app share.

``train_folder`` runs parts that each do one job: prepare the data, fit with a strategy
(strategies.py), calibrate the confidence, evaluate on the test split, build the card, save. A stop
request is honoured in every part: before anything is trained nothing is saved; after, the best
model so far is kept (or discarded, as the caller chooses).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishcore.config import DataConfig, from_dict, to_dict
from fishcore.data.augment import IMAGENET_MEAN, IMAGENET_STD
from fishcore.data.scan import DatasetScan, require_classes, scan
from fishcore.data.split import Split, group_items, resolve, split_dataset
from fishcore.errors import DatasetError
from fishcore.events import EventName, Phase, StopReason, StopRequested, TrainEvent
from fishcore.inference.calibration import calibrated_probabilities
from fishcore.inference.evaluate import EvalReport, evaluate_files, report_from_probabilities
from fishcore.inference.predict import Predictor, fit_verdict_profile
from fishcore.models.backbones import get_backbone
from fishcore.models.quantize import round_weights
from fishcore.runtime import seed_everything
from fishcore.settings import Paths
from fishcore.store.jsonfile import write_json
from fishcore.store.model_files import (
    HELDOUT_FILE,
    METRICS_FILE,
    REFERENCE_FILE,
    TEST_REPORT_FILE,
    ModelCard,
    TrainingRecord,
    save_version,
)
from fishcore.store.my_photos import field_photos_of
from fishcore.store.species import cards_for
from fishcore.training.heldout import HeldOut, held_out, settle
from fishcore.training.loop import TrainResult
from fishcore.training.run import EventLog, MetricsLog, TrainingRun
from fishcore.training.strategies import STRATEGIES, Fitted, TrainingData


@dataclass
class TrainOutcome:
    """What train_folder produced: the saved folder (None if nothing was kept), card, training result, test report."""

    model_dir: Path | None
    card: ModelCard | None
    result: TrainResult
    test_report: EvalReport | None


def prepare_split(
    data_dir: str | os.PathLike,
    data_cfg: DataConfig,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[DatasetScan, Split]:
    """Scan a dataset (and its separate test folder, if any) and split it; unchanged files come from the scan cache."""
    result = scan(data_dir, data_cfg.min_side, progress, cache_dir)
    require_classes(result)
    test_scan = None
    if data_cfg.test_dir:
        test_scan = scan(data_cfg.test_dir, data_cfg.min_side)
        extra = sorted(set(test_scan.classes) - set(result.classes))
        if extra:
            raise DatasetError(f"the test folder has classes missing from the training data: {', '.join(extra)}")
    split = split_dataset(result, data_cfg, test_scan)
    if not split.train:
        raise DatasetError("the split left no training images; add photos or lower the validation/test fractions")
    return result, split


def prepare_data(
    data_dir: str | os.PathLike, data_cfg: DataConfig, cache_root: Path, report: Callable[[Phase, int, int], None]
) -> tuple[DatasetScan, Split, TrainingData]:
    """Scan and split, and list each part as (path, class index) with the photos' content hashes."""
    result, split = prepare_split(data_dir, data_cfg, lambda d, n: report(Phase.SCANNING, d, n), cache_root / "scans")
    classes = result.classes

    def samples(paths: Sequence[str]) -> list[tuple[str, int]]:
        return [(str(path), classes.index(label)) for path, label in resolve(result.root, paths)]

    data = TrainingData(
        classes=classes,
        train=samples(split.train),
        val=samples(split.val),
        # Test photos from the dataset itself get cached features too; a separate test folder is read from files.
        test=[] if split.test_root else samples(split.test),
        sha={str(result.root / item.path): item.sha256 for item in result.items},
        train_groups=[split.group_of[path] for path in split.train],
        val_groups=[split.group_of[path] for path in split.val],
    )
    return result, split, data


def calibrate(fitted: Fitted, card: ModelCard, data: TrainingData, run: TrainingRun) -> HeldOut:
    """What the model's probabilities mean, from predictions on photos it (or its fold's model) never trained on.

    Sets the card's temperature, confidence threshold with its promise, and prediction-set rule (settle);
    returns the held-out logits, which are saved with the model.
    """
    targets = [t for _, t in data.train]
    held = held_out(run, fitted.val_logits(), data.val_groups, targets, data.train_groups, fitted.fold_fit)
    settle(card, held, run.train_cfg.calibrate)
    return held


def fit_verdicts(
    fitted: Fitted, card: ModelCard, data: TrainingData, scratch: Path, report: Callable[[Phase, int, int], None]
) -> Path:
    """The open-set profile (inference/openset.py): features of some training photos, thresholds from validation.

    Sets card.openset and returns the reference file to save with the model.
    """
    predictor = Predictor(fitted.model, card, engine="auto")
    profile = fit_verdict_profile(predictor, data.train, data.val, lambda d, n: report(Phase.CALIBRATING, d, n))
    np.save(scratch / REFERENCE_FILE, profile.reference)
    card.openset = profile.card_entry()
    return scratch / REFERENCE_FILE


def evaluate_test(
    fitted: Fitted, card: ModelCard, result: DatasetScan, split: Split, check: Callable[[], None]
) -> EvalReport | None:
    """The test split through the trained model: from cached features where the strategy has them, else from files."""
    if not split.test:
        return None
    if fitted.test_logits is not None:
        logits, targets = fitted.test_logits()
        probs = calibrated_probabilities(logits, card.temperature).numpy()
        report = report_from_probabilities(card.classes, targets.tolist(), probs, list(split.test))
        card.metrics["test"] = {**report.to_dict(with_rows=False), "computed_on": "cached float16 trunk features"}
        return report
    test_root = Path(split.test_root) if split.test_root else result.root
    predictor = Predictor(fitted.model, card, engine="auto")
    report = evaluate_files(predictor, resolve(test_root, split.test), root=test_root, progress=lambda d, n: check())
    card.metrics["test"] = report.to_dict(with_rows=False)
    return report


def build_card(fitted: Fitted, result: DatasetScan, split: Split, run: TrainingRun, evaluations: int) -> ModelCard:
    """The model card: preprocessing, provenance, effective config, split, dataset, training record."""
    paths = Paths.from_env()
    cfg = fitted.model_cfg
    spec = get_backbone(cfg.backbone)
    r, stats = fitted.result, fitted.stats
    return ModelCard(
        classes=list(result.classes),
        image_size=cfg.image_size,
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        backbone=cfg.backbone,
        pretrained=cfg.pretrained,
        backbone_weights_sha256=fitted.weights_sha,
        backbone_weights_source=spec.weights.source if cfg.pretrained else "random initialisation (from scratch)",
        config={"data": to_dict(run.data_cfg), "model": to_dict(cfg), "train": to_dict(run.train_cfg)},
        split={**split.to_dict(), "root": paths.record(result.root),
               "test_root": paths.record(split.test_root) if split.test_root else None},
        dataset={"root": paths.record(result.root), "fingerprint": result.fingerprint, "counts": result.counts,
                 "problems": len(result.problems), "citation": run.options.citation,
                 "field_photos": field_photos_of(result.root, [*split.train, *split.val])},
        training=TrainingRecord(
            mode=fitted.mode,
            seconds=round(r.seconds, 2),
            # What a user waits for: feature caching (fast and instant modes) plus fitting.
            total_seconds=stats.get("search_seconds") or round(r.seconds + (stats.get("feature_seconds") or 0.0), 2),
            epochs=r.epochs_run,
            iterations=r.iterations,
            evaluations=evaluations,
            stop_reason=str(r.stop_reason),
            best_val_loss=r.best_val_loss if r.best_val_loss != float("inf") else None,
            best_iteration=r.best_iteration,
            device=str(run.device),
            precision=r.precision,
            **{key: stats.get(key) for key in ("views", "feature_seconds", "views_computed", "views_total", "engine", "recipe")},
            candidates=stats.get("candidates", []),
        ),
        notes=list(run.options.notes),
        species=cards_for(list(result.classes)),
    )  # fmt: skip


def finish(fitted: Fitted, card: ModelCard, data: TrainingData, result: DatasetScan, split: Split, run: TrainingRun,
           scratch: Path) -> tuple[dict[str, Path], EvalReport | None] | None:  # fmt: skip
    """Calibrate, fit the verdicts' profile and evaluate on the test split: the files to save beside the weights
    and the test report.

    A stop request here skips what is left and saves the model without them, or returns None when the
    run was asked to keep nothing.
    """
    files = {}
    try:
        run.progress(Phase.CALIBRATING, 0, 1)
        held = calibrate(fitted, card, data, run)
        held.save(scratch / HELDOUT_FILE)
        files[HELDOUT_FILE] = scratch / HELDOUT_FILE
        files[REFERENCE_FILE] = fit_verdicts(fitted, card, data, scratch, run.progress)
        run.progress(Phase.EVALUATING, 0, len(split.test))
        test_report = evaluate_test(fitted, card, result, split, run.check)
        run.progress(Phase.EVALUATING, len(split.test), len(split.test))
    except StopRequested:
        fitted.result.stop_reason = StopReason.USER
        card.training.stop_reason = str(StopReason.USER)
        card.metrics.pop("test", None)
        card.openset = {}
        return ({}, None) if run.keep_on_stop else None
    if test_report is not None:
        write_json(scratch / TEST_REPORT_FILE, test_report.to_dict())
        files[TEST_REPORT_FILE] = scratch / TEST_REPORT_FILE
    return files, test_report


def train_folder(data_dir: str | os.PathLike, run: TrainingRun) -> TrainOutcome:
    """Prepare, fit (train_cfg.mode), calibrate, evaluate on the test split and save the model atomically in out_dir."""
    if not run.options.out_dir:
        raise ValueError("train_folder needs RunOptions.out_dir")
    out = Path(run.options.out_dir).expanduser().resolve()
    scratch = Path(tempfile.mkdtemp(prefix="fishcore-run-"))  # the metrics history and the test report
    metrics = MetricsLog(scratch / METRICS_FILE)
    listeners = [run.subscribe(metrics)]
    if run.options.events_path:
        listeners.append(run.subscribe(EventLog(run.options.events_path)))
    try:
        try:
            result, split, data = prepare_data(data_dir, run.data_cfg, run.cache_root, run.progress)
            run.generator = seed_everything(run.train_cfg.seed)
            fitted = STRATEGIES[run.train_cfg.mode](run, data)
        except StopRequested:  # stopped before anything was trained: nothing to keep
            return TrainOutcome(None, None, TrainResult(stop_reason=StopReason.USER), None)
        # The weights as the phone stores them (8 bits per output channel, models/quantize.py; the class scores'
        # layer stays float32 as in the Predictor): calibration, the test numbers and the saved file then all
        # describe the network every answer computes with.
        round_weights(fitted.model, keep=(getattr(fitted.model.head, "fc", None),))
        if run.stop_requested:
            fitted.result.stop_reason = StopReason.USER
        if fitted.result.stop_reason == StopReason.USER and not run.keep_on_stop:
            return TrainOutcome(None, None, fitted.result, None)
        card = build_card(fitted, result, split, run, metrics.rows)
        finished = finish(fitted, card, data, result, split, run, scratch)  # from here a stop still saves the model
        if finished is None:
            return TrainOutcome(None, card, fitted.result, None)
        files, test_report = finished
        run.emit(TrainEvent(EventName.PHASE, phase=str(Phase.SAVING), done=0, total=1))
        saved = save_version(fitted.model, card, out, {METRICS_FILE: metrics.path, **files})
        return TrainOutcome(saved, card, fitted.result, test_report)
    finally:
        for listener in listeners:
            run.unsubscribe(listener)
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Refitted:
    """What refit_verdicts did to a saved model: its card now, and the verdict profile it was given."""

    card: ModelCard
    profile: Any


def refit_verdicts(
    model_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Refitted:
    """Choose a saved model's verdicts again from the photos it was trained on (``data_dir``, default the folder its
    card names): the open-set profile (fit_verdicts' rule) and the temperature, threshold and prediction sets (the
    calibrate step's settle) from its validation photos, with the split's own groups. A saved model cannot refit
    folds, so only its validation photos are held out. ``progress(what, done, total)``.
    """
    import torch

    from fishcore.store.model_files import load_model, save_openset
    from fishcore.training.heldout import VALIDATION

    folder = Path(model_dir)
    model, card = load_model(folder)
    root = Path(data_dir).expanduser() if data_dir else card.data_root
    if root is None or not root.is_dir():
        raise DatasetError(f"the photos this model was trained on are not at {root}; pass the dataset folder")

    def samples(part: str) -> list[tuple[str, int]]:
        return [(str(path), card.classes.index(label)) for path, label in resolve(root, card.split.get(part, []))]

    def step(what: str):
        return (lambda d, n: progress(what, d, n)) if progress else None

    predictor = Predictor(model, card, engine="auto")
    profile = fit_verdict_profile(predictor, samples("train"), samples("val"), step("reading photos"))
    val = samples("val")
    logits = predictor.score_files([p for p, _ in val], progress=step("validation photos")).logits
    # The split's groups (near-copies, tracks): the photos of one count as about one in the threshold's margin.
    data_cfg = from_dict(DataConfig, card.config.get("data"))
    scanned = scan(root, data_cfg.min_side, cache_dir=Paths.from_env().scans)
    group_of = dict(zip((item.path for item in scanned.items), group_items(scanned.items, data_cfg), strict=True))
    groups = np.array([group_of.get(rel, -1 - n) for n, rel in enumerate(card.split.get("val", []))])
    held = HeldOut(logits, torch.tensor([t for _, t in val], dtype=torch.long), [VALIDATION] * len(val), groups)
    settle(card, held)
    held.save(folder / HELDOUT_FILE)
    save_openset(folder, card, profile.reference, profile.card_entry())
    return Refitted(card, profile)
