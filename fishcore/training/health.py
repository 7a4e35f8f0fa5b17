"""Dataset health: photos that are probably in the wrong species folder, near-copies filed under two species,
and photos unlike every other photo of their species; each with the reason it was flagged.

How each is found, on the pooled features of the frozen MobileNetV2 (what instant mode fits, cached by
photo content, so a check after adding photos computes only theirs):

- **possible mislabel**: a logistic regression that never saw the photo (5-fold cross-validation, near-copies
  kept in one fold) gives another species at least MISLABEL_CONFIDENCE and the folder's species at most
  1 - MISLABEL_CONFIDENCE; ranked by that probability.
- **near-copy under two species**: near-copies by the split's own rule (fishcore.data.nearcopy) in
  different folders.
- **unlike its species**: its cosine distance to the nearest other photo of its species is more than
  OUTLIER_FACTOR times the species' 95th percentile of those distances.

A photo the user chose to keep is listed in the dataset's HEALTH_KEEP file and not flagged again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fishcore.data.nearcopy import near_copy_groups, near_copy_pairs
from fishcore.data.scan import DatasetScan, scan
from fishcore.store.jsonfile import read_json, write_json

MISLABEL_CONFIDENCE = 0.8
OUTLIER_FACTOR = 1.5
FOLDS = 5
HEALTH_KEEP = ".health-keep.json"  # in a dataset folder: photos the user keeps, not flagged again
KINDS = ("mislabel", "near_copy", "outlier")


@dataclass(frozen=True)
class Flag:
    """One photo worth a look: why (one of KINDS), its folder species, the species it may be, and a score to rank by."""

    path: str  # relative to the dataset root
    kind: str
    label: str
    suggested: str | None
    score: float
    other: str | None = None  # near_copy: the photo it repeats

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "label": self.label, "suggested": self.suggested,
                "score": round(self.score, 4), "other": self.other}  # fmt: skip


def kept(root: str | os.PathLike) -> set[str]:
    path = Path(root) / HEALTH_KEEP
    return set(read_json(path).get("keep", [])) if path.is_file() else set()


def keep(root: str | os.PathLike, rel_paths: list[str]) -> None:
    """Stop flagging these photos."""
    write_json(Path(root) / HEALTH_KEEP, {"keep": sorted(kept(root) | set(rel_paths))})


def _features(result: DatasetScan, cache: Path, progress: Callable[[int, int], None] | None) -> np.ndarray:
    from fishcore.models.backbones import get_backbone
    from fishcore.models.config import ModelConfig
    from fishcore.models.net import build_model
    from fishcore.training.features import FeatureStore

    cfg = ModelConfig(head="linear", freeze_until=get_backbone("mobilenet_v2").num_stages)
    model, sha = build_model(cfg, len(result.classes))
    store = FeatureStore(cache / "features", model, cfg, sha, pooled=True)
    samples = [(str(result.root / i.path), i.sha256) for i in result.items]
    return store.features(samples, None, 0, progress)[:, 0].float().numpy()


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    proba = np.full((len(y), n_classes), 1.0 / n_classes)
    folds = min(FOLDS, int(np.bincount(y).min())) if len(y) else 0
    if folds < 2:
        return proba
    for train, test in StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0).split(x, y, groups):
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        clf = LogisticRegression(C=0.5, max_iter=1000, class_weight="balanced").fit((x[train] - mean) / std, y[train])
        proba[np.ix_(test, clf.classes_)] = clf.predict_proba((x[test] - mean) / std)
    return proba


def check_dataset(
    root: str | os.PathLike, cache: str | os.PathLike, progress: Callable[[int, int], None] | None = None
) -> list[Flag]:
    """Every flag of the dataset at root, worst first within each kind (mislabels, near-copies, outliers)."""
    result = scan(root)
    if len(result.classes) < 2 or len(result.items) < 4:
        return []
    x = _features(result, Path(cache), progress)
    classes = result.classes
    y = np.array([classes.index(i.label) for i in result.items])
    hashes = [i.phash for i in result.items]
    paths = [i.path for i in result.items]
    skip = kept(root)
    flags: list[Flag] = []
    proba = _out_of_fold(x, y, np.array(near_copy_groups(hashes)), len(classes))
    for i in np.argsort(-proba.max(1)):
        best = int(proba[i].argmax())
        if best != y[i] and proba[i, best] >= MISLABEL_CONFIDENCE and proba[i, y[i]] <= 1 - MISLABEL_CONFIDENCE:
            flags.append(Flag(paths[i], "mislabel", classes[y[i]], classes[best], float(proba[i, best])))
    for i, j in near_copy_pairs(hashes):
        if y[i] != y[j]:
            flags.append(Flag(paths[j], "near_copy", classes[y[j]], classes[y[i]], 1.0, other=paths[i]))
    unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)
    for c in range(len(classes)):
        members = np.nonzero(y == c)[0]
        if len(members) < 3:
            continue
        sims = unit[members] @ unit[members].T
        np.fill_diagonal(sims, -np.inf)
        nearest = 1.0 - sims.max(1)
        usual = float(np.quantile(nearest, 0.95))
        for k in np.argsort(-nearest):
            if usual > 0 and nearest[k] > OUTLIER_FACTOR * usual:
                flags.append(Flag(paths[members[k]], "outlier", classes[c], None, float(nearest[k] / usual)))
    return [f for f in flags if f.path not in skip]
