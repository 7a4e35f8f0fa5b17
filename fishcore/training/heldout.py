"""Held-out predictions of a trained model: what its confidence threshold and prediction sets are decided on.

The validation split alone is small (F4K: 36 photos, EGU: about 160), too few to back "95 % of
confident answers right" with any margin. So where a strategy can refit cheaply from cached features
(instant and fast modes), the training photos are split into TrainConfig.held_out_folds folds, whole groups (tracks,
videos, near-copies) kept in one fold; a fresh model of the same recipe is fitted on the other folds
and predicts the held-out one. Together with the final model's validation predictions that makes a
held-out prediction for nearly every photo the model has, at the cost of that many more fits, capped in
time (`HELD_OUT_SHARE` of the training budget; folds not reached are left out, the rest still count).
Full mode (the whole network every step) is too costly to refit: there only validation counts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fishcore.events import Phase, StopRequested
from fishcore.inference.calibration import (
    THRESHOLD_FLOOR,
    calibrated_probabilities,
    choose_threshold,
    fit_prediction_sets,
    fit_temperature,
)
from fishcore.store.model_files import ModelCard
from fishcore.training.run import TimeLimit, TrainingRun

log = logging.getLogger(__name__)

HELD_OUT_SHARE = 0.5  # of TrainConfig.budget: the most the folds may take together
MIN_FOLD_SECONDS = 10.0

VALIDATION, OUT_OF_FOLD = "validation", "out_of_fold"

# (train indices, held-out indices into TrainingData.train, a quiet sub-run with the fold's time limit) -> logits
FoldFit = Callable[[np.ndarray, np.ndarray, TrainingRun], torch.Tensor]


@dataclass
class HeldOut:
    """Logits of photos the predicting model never trained on, their true classes and where each came from."""

    logits: torch.Tensor  # (n, classes), float32
    targets: torch.Tensor  # (n,), long
    kinds: list[str]  # VALIDATION or OUT_OF_FOLD, per row
    # The group (track, video, near-copies) of each row: photos of one group count as one in the margin.
    # None: every row its own group (held-out predictions saved before groups were kept).
    groups: np.ndarray | None = None
    folds_done: int = 0
    folds_planned: int = 0
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.targets)

    def count(self, kind: str) -> int:
        return sum(k == kind for k in self.kinds)

    def save(self, path: str | os.PathLike) -> None:
        groups = np.arange(len(self)) if self.groups is None else np.asarray(self.groups)
        np.savez_compressed(
            path, logits=self.logits.numpy().astype(np.float32), targets=self.targets.numpy().astype(np.int64),
            kinds=np.array(self.kinds, dtype="U16"), groups=groups.astype(np.int64),
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike) -> HeldOut:
        with np.load(Path(path), allow_pickle=False) as z:
            groups = z["groups"] if "groups" in z.files else None
            return cls(torch.from_numpy(z["logits"]), torch.from_numpy(z["targets"]), [str(k) for k in z["kinds"]], groups)


def assign_folds(targets: Sequence[int], groups: Sequence[object], folds: int, seed: int) -> np.ndarray:
    """Fold of each photo: whole groups per fold, each class's groups dealt out so folds get similar shares."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(targets), dtype=int)
    members: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    by_class: dict[int, list[list[int]]] = {}
    for idx in members.values():
        by_class.setdefault(int(targets[idx[0]]), []).append(idx)
    for c in sorted(by_class):
        class_groups = [by_class[c][j] for j in rng.permutation(len(by_class[c]))]
        class_groups.sort(key=len, reverse=True)  # biggest first; random among equal sizes
        filled, offset = np.zeros(folds), int(rng.integers(folds))  # so small classes do not all start in fold 0
        for idx in class_groups:
            f = min(range(folds), key=lambda k: (filled[k], (k - offset) % folds))
            fold[idx] = f
            filled[f] += len(idx)
    return fold


def cross_fit(
    run: TrainingRun,
    targets: Sequence[int],
    groups: Sequence[object],
    fit_fold: FoldFit,
    budget: float,
    folds: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Out-of-fold logits over the training photos: (logits, their indices into the training list, folds done).

    Each fold's fit gets an equal share of ``budget`` seconds (at least MIN_FOLD_SECONDS); once the budget
    is spent the remaining folds are skipped. Progress is reported as the calibrating phase, in folds.
    """
    fold = assign_folds(targets, groups, folds, run.train_cfg.seed)
    started = time.monotonic()
    logits, indices, done = [], [], 0
    for f in range(folds):
        held = np.flatnonzero(fold == f)
        rest = np.flatnonzero(fold != f)
        left = budget - (time.monotonic() - started)
        if not len(held) or not len(rest):
            continue
        if left < MIN_FOLD_SECONDS and done:
            break
        run.progress(Phase.CALIBRATING, f, folds)
        sub = run.derive(limit=TimeLimit(max(MIN_FOLD_SECONDS, left / (folds - f))), quiet=True)
        try:
            fold_logits = fit_fold(rest, held, sub).float()
        except StopRequested:
            raise
        except Exception as exc:  # a refit that fails costs its held-out rows, never the trained model
            log.warning("out-of-fold refit %d of %d failed (%s); the folds done so far are kept", f + 1, folds, exc)
            break
        logits.append(fold_logits)
        indices.append(torch.as_tensor(held))
        done += 1
    run.progress(Phase.CALIBRATING, folds, folds)
    if not logits:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), 0
    return torch.cat(logits), torch.cat(indices), done


def held_out(
    run: TrainingRun,
    val: tuple[torch.Tensor, torch.Tensor],
    val_groups: Sequence[int],
    train_targets: Sequence[int],
    train_groups: Sequence[int],
    fit_fold: FoldFit | None,
) -> HeldOut:
    """The final model's validation logits plus out-of-fold logits over the training photos where the strategy can refit."""
    val_logits, val_targets = val
    parts, targets, kinds = [val_logits.float()], [val_targets.long()], [VALIDATION] * len(val_targets)
    groups = [np.asarray(val_groups, dtype=np.int64).reshape(-1)]
    started = time.monotonic()
    done, folds = 0, run.train_cfg.held_out_folds if fit_fold is not None else 0
    if folds and len(train_targets) >= 2 * folds and not run.stop_requested:  # a stopped run keeps validation alone
        budget = run.train_cfg.budget * HELD_OUT_SHARE
        logits, idx, done = cross_fit(run, train_targets, train_groups, fit_fold, budget, folds)
        if done:
            parts.append(logits)
            targets.append(torch.as_tensor(np.asarray(train_targets)[idx.numpy()], dtype=torch.long))
            kinds += [OUT_OF_FOLD] * len(idx)
            groups.append(np.asarray(train_groups, dtype=np.int64)[idx.numpy()])
    n_classes = max((p.shape[1] for p in parts if p.ndim == 2 and p.shape[0]), default=0)
    parts = [p for p in parts if p.shape[0]]
    logits = torch.cat(parts) if parts else torch.zeros(0, n_classes)
    return HeldOut(logits, torch.cat(targets), kinds, np.concatenate(groups), done, folds,
                   round(time.monotonic() - started, 2))  # fmt: skip


def settle(card: ModelCard, held: HeldOut, calibrate: bool = True) -> None:
    """Decide on the held-out predictions what the card's probabilities mean.

    The temperature is fitted on all of them (1.0 with ``calibrate`` off); the confidence threshold is the
    lowest that keeps the promise with a margin for their number (calibration.choose_threshold), recorded
    with what backs it; the prediction sets' rule comes from the same rows. Without held-out predictions
    the card keeps the fixed threshold and gets no promise and no sets.
    """
    card.temperature = fit_temperature(held.logits, held.targets) if calibrate and len(held) else 1.0
    card.promise, card.prediction_sets = {}, {}
    if not len(held):
        card.threshold = THRESHOLD_FLOOR
        return
    probs = calibrated_probabilities(held.logits, card.temperature).numpy()
    targets = held.targets.numpy()
    where = f"{held.count(VALIDATION)} validation + {held.count(OUT_OF_FOLD)} out-of-fold predictions"
    method = f"Clopper-Pearson margin on {where}, photos of one group counted as one"
    promise = choose_threshold(probs.max(1), probs.argmax(1) == targets, method=method, groups=held.groups)
    card.threshold = promise.threshold
    card.promise = {**promise.card_entry(), "validation": held.count(VALIDATION), "out_of_fold": held.count(OUT_OF_FOLD),
                    "folds": held.folds_done, "folds_planned": held.folds_planned, "seconds": held.seconds}  # fmt: skip
    card.prediction_sets = fit_prediction_sets(probs, targets).card_entry()
