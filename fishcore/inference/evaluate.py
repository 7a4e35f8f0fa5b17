"""Evaluation reports: confusion matrix, accuracy, precision/recall/F1, top-k, the paper's MSE/RMSE/MAE."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fishcore.config import SPLITS
from fishcore.data.scan import scan
from fishcore.data.split import resolve
from fishcore.errors import DatasetError
from fishcore.store.model_files import TEST_REPORT_FILE, read_card


@dataclass
class EvalReport:
    """Everything one evaluation measured; JSON-serialisable through to_dict().

    mse/rmse/mae follow the paper's error measures, computed here between one-hot targets and the
    predicted probability vectors over all images x classes entries.
    """

    classes: list[str]
    n: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    top_k_accuracy: dict[str, float]
    mse: float
    rmse: float
    mae: float
    rows: list[dict[str, Any]] = field(default_factory=list)  # file, true, predicted, confidence

    def to_dict(self, with_rows: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_rows:
            d.pop("rows")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def summary(self) -> dict[str, float]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "mse": self.mse,
            "rmse": self.rmse,
            "mae": self.mae,
        }

    def cell(self, true: str, predicted: str) -> list[dict[str, Any]]:
        """Rows of one confusion-matrix cell, least confident correct / most confident mistakes first."""
        rows = [r for r in self.rows if r["true"] == true and r["predicted"] == predicted]
        return sorted(rows, key=lambda r: r["confidence"], reverse=true != predicted)


def report_from_probabilities(
    classes: Sequence[str], targets: Sequence[int], probs: np.ndarray, files: Sequence[str] | None = None
) -> EvalReport:
    """Build an EvalReport from true class indices and predicted probability rows."""
    classes = list(classes)
    y = np.asarray(targets, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        raise DatasetError("nothing to evaluate: no images")
    pred = probs.argmax(1)
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    present = s > 0  # macro averages over the classes that occur in the evaluated data
    onehot = np.eye(len(classes))[y]
    err = probs - onehot
    ranks = np.argsort(-probs, axis=1)
    top_k = {str(k): float(np.mean([y[i] in ranks[i, :k] for i in range(len(y))])) for k in (1, 3, 5) if k <= len(classes)}
    mse = float(np.mean(err**2))
    rows = [
        {
            "file": files[i] if files else str(i),
            "true": classes[y[i]],
            "predicted": classes[pred[i]],
            "confidence": float(probs[i, pred[i]]),
            "true_prob": float(probs[i, y[i]]),
        }
        for i in range(len(y))
    ]
    return EvalReport(
        classes=classes,
        n=len(y),
        accuracy=float(np.mean(pred == y)),
        macro_precision=float(p[present].mean()),
        macro_recall=float(r[present].mean()),
        macro_f1=float(f[present].mean()),
        per_class={
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)
        },
        confusion_matrix=confusion_matrix(y, pred, labels=labels).tolist(),
        top_k_accuracy=top_k,
        mse=mse,
        rmse=math.sqrt(mse),
        mae=float(np.mean(np.abs(err))),
        rows=rows,
    )


def evaluate_files(
    predictor: Any,
    samples: Sequence[tuple[Path, str]],
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    root: Path | None = None,
) -> EvalReport:
    """Evaluate a Predictor on (path, true label) pairs; labels unknown to the model are an error."""
    classes = predictor.classes
    unknown = sorted({label for _, label in samples} - set(classes))
    if unknown:
        raise DatasetError(
            f"the data has classes the model does not know: {', '.join(unknown)} (model classes: {', '.join(classes)})"
        )
    probs, targets, files = [], [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = []
        for path, label in chunk:
            images.append(predictor.read_file(path))  # as an answer reads it (full size, like the phone)
            targets.append(classes.index(label))
            files.append(Path(path).relative_to(root).as_posix() if root else str(path))
        probs.append(predictor.probabilities(images, batch_size))
        if progress:
            progress(min(start + batch_size, len(samples)), len(samples))
    return report_from_probabilities(classes, targets, np.concatenate(probs), files)


def evaluation_samples(card: Any, root: str | Path, split: str = "all", cache_dir: Path | None = None) -> list[tuple[Path, str]]:
    """(path, label) pairs to evaluate: every usable image under root, or one split saved with the model."""
    root = Path(root).expanduser()
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if split == "all":
        result = scan(root, cache_dir=cache_dir)
        if not result.items:
            raise DatasetError(f"no usable images in {root}")
        return resolve(root, [item.path for item in result.items])
    paths = card.split.get(split) or []
    if not paths:
        raise DatasetError(f"the model has no saved '{split}' split")
    return resolve(root, paths)


def saved_test_report(model_dir: Path, root: str | Path) -> EvalReport | None:
    """The test report written at training time, if it covers the saved test split of this data folder."""
    path = Path(model_dir) / TEST_REPORT_FILE
    if not path.is_file():
        return None
    try:
        card = read_card(model_dir)
        report = EvalReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, OSError):
        return None
    same_root = card.test_root is not None and card.test_root == Path(root).expanduser().resolve()
    if not same_root or sorted(r["file"] for r in report.rows) != sorted(card.split.get("test", [])):
        return None
    return report
