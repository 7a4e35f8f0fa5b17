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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from fishcore.config import AugmentConfig
from fishcore.data.augment import build_transforms
from fishcore.events import EventName, Phase, StopReason, TrainEvent
from fishcore.models.backbones import get_backbone
from fishcore.models.config import ModelConfig
from fishcore.models.net import FishNet, build_model
from fishcore.runtime import seed_everything
from fishcore.training.features import CachedViews, FeatureStore, TailModel
from fishcore.training.heldout import FoldFit
from fishcore.training.loop import ImageListDataset, TrainResult, balanced_weights, compute_logits, fit
from fishcore.training.probe import MAX_ITER, fit_probe
from fishcore.training.run import TimeLimit, TrainingRun

Samples = list[tuple[str, int]]  # (path, class index)


@dataclass
class TrainingData:
    """The prepared split as (path, class index) lists, with each photo's content hash."""

    classes: list[str]
    train: Samples
    val: Samples
    test: Samples  # empty when the test photos come from a separate folder (evaluated from files)
    sha: dict[str, str]
    # Group of each training and validation photo (track, video, near-copies): out-of-fold refits keep a group
    # in one fold, and the confidence threshold's margin counts a group's photos as one.
    train_groups: list[int] = field(default_factory=list)
    val_groups: list[int] = field(default_factory=list)


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
    # A fresh model of the same recipe fitted on some training photos, predicting others (training/heldout.py);
    # None where a refit costs too much (full mode).
    fold_fit: FoldFit | None = None


def _targets(samples: Samples) -> list[int]:
    return [t for _, t in samples]


def _class_weights(data: TrainingData) -> torch.Tensor:
    return balanced_weights(_targets(data.train), len(data.classes))


def _cached_features(run: TrainingRun, d: TrainingData, store: FeatureStore, augment: AugmentConfig | None, k: int):
    """Features of train (k augmented views), val and test (clean), with one progress count over all photos."""
    total = len(d.train) + len(d.val) + len(d.test)

    def views_of(samples: Samples, augment: AugmentConfig | None, k: int, offset: int) -> torch.Tensor:
        def on_progress(done: int, _n: int) -> None:
            run.progress(Phase.CACHING, offset + done, total)

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


def _loader_logits(module: nn.Module, dataset, run: TrainingRun) -> tuple[torch.Tensor, torch.Tensor]:
    return compute_logits(module.cpu(), DataLoader(dataset, batch_size=64), torch.device("cpu"), run.check)


def fit_full(run: TrainingRun, data: TrainingData) -> Fitted:
    """The paper's way: augmentation drawn afresh every epoch, the whole network in every step."""
    model, sha = build_model(run.model_cfg, len(data.classes))
    size = run.model_cfg.image_size
    train_set = ImageListDataset(data.train, build_transforms(run.train_cfg.augment, True, size), size)
    val_set, val_model = ImageListDataset(data.val, build_transforms(None, False, size), size), model
    stats: dict = {}
    if model.trunk_is_constant and data.val:
        # The frozen stages give the same output at every validation: compute (or load) them once.
        store = FeatureStore(run.cache_root / "features", model, run.model_cfg, sha)
        val = [(p, data.sha[p]) for p, _ in data.val]
        features = store.features(val, None, 0, lambda done, n: run.progress(Phase.CACHING, done, n))
        val_set, val_model = CachedViews(features, _targets(data.val), random_view=False), TailModel(model)
        stats = {"views_computed": store.computed}
    result = fit(model, train_set, val_set, run, val_model, _class_weights(data))
    model.cpu().eval()
    cfg = replace(run.model_cfg, freeze_until=model.freeze_until)
    return Fitted("full", model, cfg, sha, result, lambda: _loader_logits(val_model, val_set, run), stats=stats)


def fit_fast(run: TrainingRun, data: TrainingData) -> Fitted:
    """Cached frozen-trunk features (clean + K augmented views per photo); the unfrozen stages and head train."""
    model, sha = build_model(run.model_cfg, len(data.classes))
    if not model.trunk_is_constant:  # adapting BatchNorm statistics cannot be cached: train the paper's way
        return fit_full(run, data)
    store = FeatureStore(run.cache_root / "features", model, run.model_cfg, sha)
    train_f, val_f, test_f, stats = _cached_features(run, data, store, run.train_cfg.augment, run.train_cfg.views)
    tail = TailModel(model)
    train_set = CachedViews(train_f, _targets(data.train))
    val_set = CachedViews(val_f, _targets(data.val), random_view=False)
    result = fit(tail, train_set, val_set, run, class_weights=_class_weights(data))
    model.cpu().eval()
    test_set = CachedViews(test_f, _targets(data.test), random_view=False)
    targets = _targets(data.train)

    def fold_fit(rest: np.ndarray, held: np.ndarray, sub: TrainingRun) -> torch.Tensor:
        # As long as the final model trained to its best validation (no validation of its own: cheaper, and
        # the fold's model learns as much as the final one did).
        steps = result.best_iteration or result.iterations or 1
        epochs = max(1, round(steps / math.ceil(len(rest) / run.train_cfg.batch_size)))
        fold_run = sub.derive(model=run.model_cfg, train=replace(run.train_cfg, epochs=epochs))
        fold_run.generator = seed_everything(run.train_cfg.seed)
        fold_model, _ = build_model(run.model_cfg, len(data.classes))
        fold_tail = TailModel(fold_model)
        weights = balanced_weights([targets[i] for i in rest], len(data.classes))
        fit(fold_tail, Subset(CachedViews(train_f, targets), rest.tolist()), None, fold_run, class_weights=weights)
        held_set = Subset(CachedViews(train_f, targets, random_view=False), held.tolist())
        return _loader_logits(fold_tail.eval(), held_set, fold_run)[0]

    return Fitted(
        "fast",
        model,
        replace(run.model_cfg, freeze_until=model.freeze_until),
        sha,
        result,
        lambda: _loader_logits(tail, val_set, run),
        (lambda: _loader_logits(tail, test_set, run)) if data.test else None,
        {**stats, "views": run.train_cfg.views},
        fold_fit,
    )


def fit_instant(run: TrainingRun, data: TrainingData) -> Fitted:
    """Logistic regression on the pooled features of the whole frozen backbone, written into a linear head."""
    stages = get_backbone(run.model_cfg.backbone).num_stages
    cfg = replace(run.model_cfg, head="linear", freeze_until=stages, train_frozen_bn=False)
    model, sha = build_model(cfg, len(data.classes))
    store = FeatureStore(run.cache_root / "features", model, cfg, sha, pooled=True)
    # Every view of a training photo is a row. On EGU two augmented views per photo made no difference (test
    # macro-F1 0.47 with, 0.48 without), on small synthetic sets they did (0.76 without, >= 0.9 with): kept.
    train_f, val_f, test_f, stats = _cached_features(run, data, store, run.train_cfg.augment, run.train_cfg.views)
    run.emit(TrainEvent(EventName.TRAIN_START, epoch=0, iteration=0, total_iterations=1, precision="fp32"))
    started = time.perf_counter()
    x = train_f.float().reshape(-1, train_f.shape[-1]).numpy()
    y = np.repeat(_targets(data.train), train_f.shape[1])
    mean, std = x.mean(0), x.std(0) + 1e-6
    groups = np.repeat(np.asarray(data.train_groups or range(len(data.train))), train_f.shape[1])  # views: one group
    clf = fit_probe((x - mean) / std, y, groups, run.train_cfg.class_weights)
    _write_linear_head(model.head.fc, clf, mean, std, len(data.classes))
    model.cpu().eval()
    fc = model.head.fc

    def logits_of(features: torch.Tensor, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return fc(features[:, 0].float()), torch.tensor(_targets(samples), dtype=torch.long)

    views = train_f.shape[1]

    def fold_fit(rest: np.ndarray, held: np.ndarray, sub: TrainingRun) -> torch.Tensor:
        from sklearn.linear_model import LogisticRegression

        rows = (rest[:, None] * views + np.arange(views)).ravel()  # every view of the fold's photos
        fold_clf = LogisticRegression(max_iter=MAX_ITER, C=clf.C, class_weight=clf.class_weight)
        fold_clf.fit((x[rows] - mean) / std, y[rows])
        log_p = np.full((len(held), len(data.classes)), -30.0)  # a class the fold never saw is never picked
        log_p[:, fold_clf.classes_] = fold_clf.predict_log_proba((train_f[held, 0].float().numpy() - mean) / std)
        return torch.as_tensor(log_p, dtype=torch.float32)

    seconds = time.perf_counter() - started
    result = TrainResult(epochs_run=0, iterations=int(np.max(clf.n_iter_)), seconds=seconds, precision="fp32")
    if len(val_f):
        logits, targets = logits_of(val_f, data.val)
        result.best_val_loss = float(nn.functional.cross_entropy(logits, targets))
        result.best_iteration = result.evaluations = 1
        acc = float((logits.argmax(1) == targets).float().mean())
        run.emit(TrainEvent(EventName.VALIDATION, epoch=1, iteration=1, total_iterations=1, val_loss=result.best_val_loss,
                            val_accuracy=acc, elapsed=seconds))  # fmt: skip
    best = result.best_val_loss if len(val_f) else None
    run.emit(TrainEvent(EventName.TRAIN_END, epoch=0, iteration=1, total_iterations=1, elapsed=seconds, eta=0.0,
                        stop_reason=str(StopReason.COMPLETED), val_loss=best))  # fmt: skip
    return Fitted(
        "instant",
        model,
        cfg,
        sha,
        result,
        lambda: logits_of(val_f, data.val),
        (lambda: logits_of(test_f, data.test)) if data.test else None,
        {**stats, "views": run.train_cfg.views},
        fold_fit,
    )


def _write_linear_head(fc: nn.Linear, clf, mean: np.ndarray, std: np.ndarray, n_classes: int) -> None:
    """The logistic regression into the linear layer, its standardisation folded in: w' = w / std, b' = b - w' . mean."""
    w = clf.coef_ / std
    b = clf.intercept_ - w @ mean
    if len(clf.classes_) != n_classes:  # a class without training photos never gets picked
        full_w, full_b = np.zeros((n_classes, w.shape[1])), np.full(n_classes, -1e4)
        full_w[clf.classes_], full_b[clf.classes_] = w, b
        w, b = full_w, full_b
    with torch.no_grad():
        fc.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        fc.bias.copy_(torch.as_tensor(b, dtype=torch.float32))


def validation_scores(fitted: Fitted) -> tuple[float, float]:
    """(macro-F1, loss) on the validation split: what auto mode ranks candidates by (F1 first, then loss)."""
    from sklearn.metrics import f1_score

    logits, targets = fitted.val_logits()
    if len(targets) == 0:
        return 0.0, math.inf
    loss = float(nn.functional.cross_entropy(logits.float(), targets))
    return float(f1_score(targets.numpy(), logits.argmax(1).numpy(), average="macro")), loss


def auto_plan(backbone: str) -> list[int]:
    """Freeze points auto mode tries in fast mode, cheapest first (more of the network trained each time)."""
    return AUTO_FREEZE_POINTS.get(backbone, [get_backbone(backbone).default_freeze_until])


# Chosen by measurement (README, "Accuracy"): on EGU (underwater video, split by video, seed 0, 2-core AMD
# EPYC) test macro-F1 was 0.49 for instant mode and 0.65 for fast mode from stage 10 (early-stopped after
# 8 epochs), while 3-way candidates at stages 17/14/11 sharing a 3-minute budget each ran out of time
# (0.43). So: one deep candidate gets the whole remaining budget; easy photos never reach it because
# instant mode already gets every validation photo right.
AUTO_FREEZE_POINTS = {"mobilenet_v2": [10], "efficientnet_lite0": [9], "resnet18": [3], "resnet50": [3]}
# A candidate this good on validation leaves nothing worth a costlier one's minutes (LSFD: instant mode
# reaches 0.996 on validation, one photo wrong, and 0.996 on test).
NOTHING_LEFT = 0.99
# Epochs are only an upper bound in auto mode: early stopping or the budget ends each candidate.
AUTO_MAX_EPOCHS = 200
# The stronger backbone auto mode may try beside a default one (frozen, at its own photo size). EfficientNet-Lite2
# was 1.4 points of accuracy ahead of MobileNetV2 on average over four hidden sets (-1.0 to +3.7, none beyond
# noise), here 0.96 against 0.95 on F4K and 0.47 against 0.49 on EGU (three splits each): worth trying where
# validation photos can say, not worth making the default.
STRONGER = {"mobilenet_v2": "efficientnet_lite2"}
# Its features cost about 3x MobileNetV2's per photo (260 px against 224, a deeper network); 0.05 s per photo
# when MobileNetV2's came from the cache and give no measure (2-core Intel Xeon, batched).
STRONGER_COST = 3.0
STRONGER_SECONDS_PER_PHOTO = 0.05


def fit_auto(run: TrainingRun, data: TrainingData) -> Fitted:
    """Candidates compared on the validation split within the time budget; the best one is the model.

    Instant mode first (its features are the cheapest); then, unless that already leaves nothing to gain,
    instant mode on the STRONGER backbone when its features fit in half the budget left; then fast mode at
    each freeze point of auto_plan, each trained until validation stops improving or its share of the
    remaining budget runs out. A candidate at NOTHING_LEFT validation macro-F1 ends the search. Only
    validation decides (macro-F1, then loss); the test split is not touched here. The card names every
    candidate with its scores and the one kept.
    """
    search = run.derive(limit=TimeLimit(run.train_cfg.budget))
    start = time.monotonic()
    candidates: list[dict] = []
    best: tuple[tuple[float, float], str, Fitted] | None = None

    def consider(name: str, fitted: Fitted, began: float) -> None:
        nonlocal best
        f1, loss = validation_scores(fitted)
        row = {
            "name": name,
            "mode": fitted.mode,
            "freeze_until": fitted.model_cfg.freeze_until,
            "val_macro_f1": round(f1, 4),
            "val_loss": round(loss, 4) if math.isfinite(loss) else None,
            "seconds": round(time.monotonic() - began, 1),
            "stop_reason": str(fitted.result.stop_reason),
        }
        candidates.append(row)
        search.emit(TrainEvent(EventName.CANDIDATE, candidate=name, val_macro_f1=f1, val_loss=row["val_loss"],
                               elapsed=time.monotonic() - start))  # fmt: skip
        if best is None or (f1, -loss) > (best[0][0], -best[0][1]):
            best = ((f1, loss), name, fitted)

    began = time.monotonic()
    # The quick check uses clean views only (a third of the feature time): its job is to tell easy photos,
    # where it ends the search, from hard ones, where the budget is better spent on fine-tuning.
    instant = fit_instant(search.derive(train=replace(run.train_cfg, views=0), candidate="instant"), data)
    consider("instant", instant, began)
    stronger = STRONGER.get(run.model_cfg.backbone) if run.train_cfg.stronger_backbone and run.model_cfg.pretrained else None
    remaining = search.seconds_left()
    if stronger and best[0][0] < NOTHING_LEFT and not run.stop_requested and remaining is not None:
        photos = len(data.train) + len(data.val) + len(data.test)
        computed = instant.stats.get("views_computed") or 0
        per_photo = STRONGER_COST * instant.stats["feature_seconds"] / computed if computed else STRONGER_SECONDS_PER_PHOTO
        if photos * per_photo <= remaining / 2:  # the other half is fine-tuning's
            began = time.monotonic()
            name = f"instant, {stronger}"
            spec = get_backbone(stronger)
            model = replace(run.model_cfg, backbone=stronger, image_size=spec.native_size, freeze_until=None)
            consider(name, fit_instant(search.derive(model=model, train=replace(run.train_cfg, views=0), candidate=name), data),
                     began)  # fmt: skip
    plan = auto_plan(run.model_cfg.backbone)
    for i, freeze in enumerate(plan):
        remaining = search.seconds_left()
        if best[0][0] >= NOTHING_LEFT or run.stop_requested or remaining is None or remaining < 10:
            break  # good enough, stopped, or not enough time left to learn anything
        began = time.monotonic()
        name = f"fast, stages {freeze}+ trained"
        sub = search.derive(
            model=replace(run.model_cfg, freeze_until=freeze),
            train=replace(run.train_cfg, mode="fast", epochs=AUTO_MAX_EPOCHS),
            limit=TimeLimit(remaining / (len(plan) - i)),
            candidate=name,
        )
        seed_everything(run.train_cfg.seed)  # each candidate starts from the same initial draw
        consider(name, fit_fast(sub, data), began)
    _, name, chosen = best
    chosen.stats = {
        **chosen.stats,
        "recipe": name,
        "candidates": candidates,
        "search_seconds": round(time.monotonic() - start, 2),
    }
    chosen.mode = "auto"
    return chosen


STRATEGIES: dict[str, Callable[[TrainingRun, TrainingData], Fitted]] = {
    "auto": fit_auto,
    "instant": fit_instant,
    "fast": fit_fast,
    "full": fit_full,
}
