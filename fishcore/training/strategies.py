"""Training strategies: how the network's weights are fitted once the data is prepared.

- ``full``: the paper's way: fresh augmentation every epoch, the whole network runs each step.
- ``fast``: the frozen stages run once per photo view (clean + K augmented) and are cached; only the
  unfrozen stages and the residual head train on those features.
- ``instant``: the whole backbone is frozen; a logistic regression (scikit-learn) on the pooled, cached
  features becomes the model's linear classifier. Seconds from a warm cache.

Each strategy returns a ``Fitted``: the trained model plus how to get validation and test logits the
cheapest correct way (cached features where it has them), so calibration and evaluation are shared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fishcore.config import AugmentConfig, ModelConfig, TrainConfig
from fishcore.data.augment import build_transforms
from fishcore.events import EventName, Phase, Progress, StopReason, stop_checker
from fishcore.models.backbones import get_backbone
from fishcore.models.net import FishNet, build_model
from fishcore.training.features import CachedViews, FeatureStore, TailModel
from fishcore.training.loop import Callback, ImageListDataset, TrainEvent, TrainResult, compute_logits, fit

Samples = list[tuple[str, int]]  # (path, class index)


@dataclass
class TrainingData:
    """The prepared split as (path, class index) lists, with each photo's content hash."""

    classes: list[str]
    train: Samples
    val: Samples
    test: Samples  # empty when the test photos come from a separate folder (evaluated from files)
    sha: dict[str, str]


@dataclass
class RunContext:
    """What every strategy gets: configs, the data, where caches live, and how to report and stop."""

    data: TrainingData
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    cache_root: Path
    device: torch.device
    generator: torch.Generator
    callbacks: Sequence[Callback] = ()
    stop: threading.Event | None = None
    progress: Progress | None = None

    def report(self, phase: Phase, done: int, total: int) -> None:
        if self.progress:
            self.progress(phase, done, total)
        stop_checker(self.stop)()


@dataclass
class Fitted:
    """A strategy's result: the trained model (CPU, eval mode) and how to get logits for the shared steps."""

    mode: str
    model: FishNet
    model_cfg: ModelConfig  # the effective config (instant mode freezes everything and uses a linear head)
    weights_sha: str | None
    result: TrainResult
    val_logits: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    # Logits of TrainingData.test from cached features, or None: then the test photos are read from files.
    test_logits: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    stats: dict = field(default_factory=dict)


def _targets(samples: Samples) -> list[int]:
    return [t for _, t in samples]


def _cached_features(ctx: RunContext, store: FeatureStore, augment: AugmentConfig | None, k: int):
    """Features of train (k augmented views), val and test (clean), with one progress count over all photos."""
    d = ctx.data
    total = len(d.train) + len(d.val) + len(d.test)

    def views_of(samples: Samples, augment: AugmentConfig | None, k: int, offset: int) -> torch.Tensor:
        def on_progress(done: int, _n: int) -> None:
            ctx.report(Phase.CACHING, offset + done, total)

        return store.features([(p, d.sha[p]) for p, _ in samples], augment, k, on_progress)

    started = time.perf_counter()
    train = views_of(d.train, augment, k, 0)
    val = views_of(d.val, None, 0, len(d.train))
    test = views_of(d.test, None, 0, len(d.train) + len(d.val))
    stats = {
        "feature_seconds": round(time.perf_counter() - started, 2),
        "views_computed": store.computed,
        "views_total": int(train.shape[0] * train.shape[1] + len(val) + len(test)) if len(train) else 0,
        "engine": store.engine.name if store.computed else "cache",
    }
    return train, val, test, stats


def _loader_logits(module: nn.Module, dataset, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
    return compute_logits(module.cpu(), DataLoader(dataset, batch_size=64), torch.device("cpu"), stop_checker(ctx.stop))


def fit_full(ctx: RunContext) -> Fitted:
    """The paper's way: augmentation drawn afresh every epoch, the whole network in every step."""
    model, sha = build_model(ctx.model_cfg, len(ctx.data.classes))
    size = ctx.model_cfg.image_size
    train_set = ImageListDataset(ctx.data.train, build_transforms(ctx.train_cfg.augment, True, size), size)
    val_set, val_model = ImageListDataset(ctx.data.val, build_transforms(None, False, size), size), model
    stats: dict = {}
    if model.trunk_is_constant and ctx.data.val:
        # The frozen stages give the same output at every validation: compute (or load) them once.
        store = FeatureStore(ctx.cache_root / "features", model, ctx.model_cfg, sha)
        val = [(p, ctx.data.sha[p]) for p, _ in ctx.data.val]
        n = len(val)
        features = store.features(val, None, 0, lambda done, _n: ctx.report(Phase.CACHING, done, n))
        val_set, val_model = CachedViews(features, _targets(ctx.data.val), random_view=False), TailModel(model)
        stats = {"views_computed": store.computed}
    result = fit(model, train_set, val_set, ctx.train_cfg, ctx.callbacks, ctx.stop, ctx.device, ctx.generator, val_model)
    model.cpu().eval()
    cfg = replace(ctx.model_cfg, freeze_until=model.freeze_until)
    return Fitted("full", model, cfg, sha, result, lambda: _loader_logits(val_model, val_set, ctx), stats=stats)


def fit_fast(ctx: RunContext) -> Fitted:
    """Cached frozen-trunk features (clean + K augmented views per photo); the unfrozen stages and head train."""
    model, sha = build_model(ctx.model_cfg, len(ctx.data.classes))
    if not model.trunk_is_constant:  # adapting BatchNorm statistics cannot be cached: train the paper's way
        return fit_full(ctx)
    store = FeatureStore(ctx.cache_root / "features", model, ctx.model_cfg, sha)
    train_f, val_f, test_f, stats = _cached_features(ctx, store, ctx.train_cfg.augment, ctx.train_cfg.views)
    tail = TailModel(model)
    train_set = CachedViews(train_f, _targets(ctx.data.train))
    val_set = CachedViews(val_f, _targets(ctx.data.val), random_view=False)
    result = fit(tail, train_set, val_set, ctx.train_cfg, ctx.callbacks, ctx.stop, ctx.device, ctx.generator)
    model.cpu().eval()
    test_set = CachedViews(test_f, _targets(ctx.data.test), random_view=False)
    return Fitted(
        "fast",
        model,
        replace(ctx.model_cfg, freeze_until=model.freeze_until),
        sha,
        result,
        lambda: _loader_logits(tail, val_set, ctx),
        (lambda: _loader_logits(tail, test_set, ctx)) if ctx.data.test else None,
        {**stats, "views": ctx.train_cfg.views},
    )


def fit_instant(ctx: RunContext) -> Fitted:
    """Logistic regression on the pooled features of the whole frozen backbone, written into a linear head."""
    from sklearn.linear_model import LogisticRegression

    stages = get_backbone(ctx.model_cfg.backbone).num_stages
    cfg = replace(ctx.model_cfg, head="linear", freeze_until=stages, train_frozen_bn=False)
    model, sha = build_model(cfg, len(ctx.data.classes))
    store = FeatureStore(ctx.cache_root / "features", model, cfg, sha, pooled=True)
    train_f, val_f, test_f, stats = _cached_features(ctx, store, ctx.train_cfg.augment, ctx.train_cfg.views)
    emit = _emitter(ctx.callbacks)
    emit(TrainEvent(EventName.TRAIN_START, 0, 0, 1, message="fp32"))
    started = time.perf_counter()
    # Every view of a training photo is a row: the augmented views widen what the classifier has seen.
    x = train_f.float().reshape(-1, train_f.shape[-1]).numpy()
    y = np.repeat(_targets(ctx.data.train), train_f.shape[1])
    mean, std = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(max_iter=1000, C=1.0)
    clf.fit((x - mean) / std, y)
    # Standardisation folded into the linear layer: w' = w / std, b' = b - w' . mean.
    w = clf.coef_ / std
    b = clf.intercept_ - w @ mean
    if len(clf.classes_) != len(ctx.data.classes):  # a class without training photos never gets picked
        full_w = np.zeros((len(ctx.data.classes), w.shape[1]))
        full_b = np.full(len(ctx.data.classes), -1e4)
        full_w[clf.classes_], full_b[clf.classes_] = w, b
        w, b = full_w, full_b
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        model.head.fc.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
    model.cpu().eval()
    fc = model.head.fc

    def logits_of(features: torch.Tensor, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return fc(features[:, 0].float()), torch.tensor(_targets(samples), dtype=torch.long)

    seconds = time.perf_counter() - started
    result = TrainResult(epochs_run=0, iterations=int(np.max(clf.n_iter_)), seconds=seconds, precision="fp32")
    if len(val_f):
        logits, targets = logits_of(val_f, ctx.data.val)
        result.best_val_loss = float(nn.functional.cross_entropy(logits, targets))
        acc = float((logits.argmax(1) == targets).float().mean())
        row = TrainEvent(EventName.VALIDATION, 1, 1, 1, val_loss=result.best_val_loss, val_accuracy=acc, elapsed=seconds)
        result.history.append(row.to_dict())
        result.best_iteration = 1
        emit(row)
    emit(TrainEvent(EventName.TRAIN_END, 0, 1, 1, elapsed=seconds, eta=0.0, message=StopReason.COMPLETED))
    return Fitted(
        "instant",
        model,
        cfg,
        sha,
        result,
        lambda: logits_of(val_f, ctx.data.val),
        (lambda: logits_of(test_f, ctx.data.test)) if ctx.data.test else None,
        {**stats, "views": ctx.train_cfg.views},
    )


def _emitter(callbacks: Sequence[Callback]) -> Callback:
    def emit(event: TrainEvent) -> None:
        for cb in callbacks:
            cb(event)

    return emit


STRATEGIES: dict[str, Callable[[RunContext], Fitted]] = {"instant": fit_instant, "fast": fit_fast, "full": fit_full}
