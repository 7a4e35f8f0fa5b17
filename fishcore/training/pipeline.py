"""Folder of photos in, trained + evaluated + saved model out: the one entry point the CLI and the app share."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fishcore.config import AugmentConfig, DataConfig, ModelConfig, TrainConfig, to_dict
from fishcore.data.augment import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from fishcore.data.dataset import DatasetScan, Split, require_classes, resolve, scan, split_dataset
from fishcore.errors import DatasetError
from fishcore.inference.evaluate import EvalReport, evaluate_files, report_from_probabilities
from fishcore.inference.predict import Predictor
from fishcore.models.backbones import get_backbone
from fishcore.models.net import build_model
from fishcore.runtime import resolve_device, seed_everything
from fishcore.settings import Paths
from fishcore.store.model_files import METRICS_FILE, ModelCard, record_path, save_model
from fishcore.training.features import CachedViews, FeatureStore, TailModel
from fishcore.training.loop import Callback, ImageListDataset, JsonlLog, TrainResult, compute_logits, fit, fit_temperature

TEST_REPORT_FILE = "test_report.json"


@dataclass
class TrainOutcome:
    """What train_folder produced: the saved folder (None if the user chose to keep nothing), card, report."""

    model_dir: Path | None
    card: ModelCard
    result: TrainResult
    test_report: EvalReport | None


def _samples(root: Path, rel_paths: Sequence[str], classes: list[str]) -> list[tuple[str, int]]:
    return [(str(path), classes.index(label)) for path, label in resolve(root, rel_paths)]


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


def train_folder(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    data_cfg: DataConfig = DataConfig(),
    model_cfg: ModelConfig = ModelConfig(),
    train_cfg: TrainConfig = TrainConfig(),
    callbacks: Sequence[Callback] = (),
    stop: threading.Event | None = None,
    save_on_stop: bool | Callable[[], bool] = True,
    notes: Sequence[str] = (),
    citation: str = "",
    scan_progress: Callable[[int, int], None] | None = None,
    log_path: str | os.PathLike | None = None,
    device: str = "auto",
    features_progress: Callable[[int, int], None] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> TrainOutcome:
    """Scan, split, build, train, calibrate, evaluate on the test split and save the model atomically."""
    out = Path(out_dir).expanduser().resolve()
    cache_root = Path(cache_dir) if cache_dir else Paths.from_env().cache
    result, split = prepare_split(data_dir, data_cfg, scan_progress, cache_root / "scans")
    classes = result.classes
    gen = seed_everything(train_cfg.seed)
    model, weights_sha = build_model(model_cfg, len(classes))
    size = model_cfg.image_size
    train_samples = _samples(result.root, split.train, classes)
    val_samples = _samples(result.root, split.val, classes)
    if train_cfg.mode not in ("fast", "full"):
        raise DatasetError(f"unknown training mode '{train_cfg.mode}'; use 'fast' or 'full'")
    mode = "fast" if train_cfg.mode == "fast" and model.trunk_is_constant else "full"
    feature_stats: dict = {}
    if mode == "fast":
        # The frozen trunk runs once per view; only the unfrozen stages and the head train.
        started = time.perf_counter()
        store = FeatureStore(cache_root / "features", model, model_cfg, weights_sha)
        shas = {str(result.root / item.path): item.sha256 for item in result.items}
        # Test photos from the dataset itself get cached clean features too (a separate test folder does not).
        test_samples = [] if split.test_root else _samples(result.root, split.test, classes)
        total = len(train_samples) + len(val_samples) + len(test_samples)

        def views_of(samples: list, augment: AugmentConfig | None, k: int, offset: int) -> torch.Tensor:
            on_progress = (lambda done, _n: features_progress(offset + done, total)) if features_progress else None
            return store.features([(p, shas[p]) for p, _ in samples], augment, k, on_progress)

        train_feats = views_of(train_samples, train_cfg.augment, train_cfg.views, 0)
        val_feats = views_of(val_samples, None, 0, len(train_samples))
        test_feats = views_of(test_samples, None, 0, len(train_samples) + len(val_samples))
        fit_model = TailModel(model)
        train_set = CachedViews(train_feats, [t for _, t in train_samples])
        val_set = CachedViews(val_feats, [t for _, t in val_samples], random_view=False)
        feature_stats = {
            "feature_seconds": round(time.perf_counter() - started, 2),
            "views_computed": store.computed,
            "views_total": int(train_feats.shape[0] * train_feats.shape[1] + len(val_feats) + len(test_feats)),
            "engine": store.engine.name if store.computed else "cache",
        }
    else:
        fit_model = model
        train_set = ImageListDataset(train_samples, build_transforms(train_cfg.augment, True, size), size)
        val_set = ImageListDataset(val_samples, build_transforms(None, False, size), size)
    log = Path(log_path) if log_path else out.parent / f".{out.name}.{os.getpid()}.{METRICS_FILE}"
    log.unlink(missing_ok=True)
    dev = resolve_device(device)
    train_result = fit(fit_model, train_set, val_set, train_cfg, [JsonlLog(log), *callbacks], stop, dev, gen)
    model.cpu().eval()

    temperature = 1.0
    if train_cfg.calibrate and len(val_set):
        logits, targets = compute_logits(fit_model.cpu(), DataLoader(val_set, batch_size=64), resolve_device("cpu"))
        temperature = fit_temperature(logits, targets)

    spec = get_backbone(model_cfg.backbone)
    card = ModelCard(
        classes=classes,
        image_size=size,
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        backbone=model_cfg.backbone,
        pretrained=model_cfg.pretrained,
        backbone_weights_sha256=weights_sha,
        backbone_weights_source=spec.weights.source if model_cfg.pretrained else "random initialisation (from scratch)",
        temperature=temperature,
        config={
            "data": to_dict(data_cfg),
            "model": {**to_dict(model_cfg), "freeze_until": model.freeze_until},
            "train": to_dict(train_cfg),
        },
        split={
            **split.to_dict(),
            "root": record_path(result.root),
            "test_root": record_path(split.test_root) if split.test_root else None,
        },
        dataset={
            "root": record_path(result.root),
            "fingerprint": result.fingerprint,
            "counts": result.counts,
            "problems": len(result.problems),
            "citation": citation,
        },
        training={
            "seconds": round(train_result.seconds, 2),
            "epochs": train_result.epochs_run,
            "iterations": train_result.iterations,
            "stop_reason": train_result.stop_reason,
            "best_val_loss": train_result.best_val_loss if train_result.best_val_loss != float("inf") else None,
            "best_iteration": train_result.best_iteration,
            "device": str(dev),
            "precision": train_result.precision,
            "mode": mode,
            "views": train_cfg.views if mode == "fast" else None,
            **feature_stats,
            # What a user waits for: feature caching (fast mode) plus the training loop.
            "total_seconds": round(train_result.seconds + feature_stats.get("feature_seconds", 0.0), 2),
        },
        history=train_result.history,
        notes=list(notes),
    )
    keep = save_on_stop() if callable(save_on_stop) else save_on_stop
    if train_result.stop_reason == "user" and not keep:
        log.unlink(missing_ok=True)
        return TrainOutcome(None, card, train_result, None)

    report = None
    if split.test and mode == "fast" and not split.test_root:
        # The test photos' cached clean features through the trained tail: the same preprocessing and
        # network as the Predictor, with the trunk's output rounded to float16 (tested to agree).
        targets = [t for _, t in test_samples]
        test_set = CachedViews(test_feats, targets, random_view=False)
        logits, _ = compute_logits(fit_model, DataLoader(test_set, batch_size=64), resolve_device("cpu"))
        probs = torch.softmax(logits / temperature, dim=1).numpy()
        report = report_from_probabilities(classes, targets, probs, list(split.test))
        card.metrics["test"] = {**report.to_dict(with_rows=False), "computed_on": "cached float16 trunk features"}
    elif split.test:
        test_root = Path(split.test_root) if split.test_root else result.root
        report = evaluate_files(Predictor(model, card, engine="auto"), resolve(test_root, split.test), root=test_root)
        card.metrics["test"] = report.to_dict(with_rows=False)
    extra = {METRICS_FILE: log}
    if report is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
            json.dump(report.to_dict(), f, ensure_ascii=False)
        extra[TEST_REPORT_FILE] = Path(f.name)
    try:
        saved = save_model(model, card, out, extra)
    finally:
        if report is not None:
            extra[TEST_REPORT_FILE].unlink(missing_ok=True)
        if log_path is None:
            log.unlink(missing_ok=True)
    return TrainOutcome(saved, card, train_result, report)
