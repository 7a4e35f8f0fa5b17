"""The paper's comparison, on the user's own photos: architectures and recipes side by side on one split.

Every row is trained on the same seeded split and scored on the same test photos: the paper's model
(pretrained MobileNetV2 + its residual head, fast mode); the same without the residual head;
instant mode (frozen features + logistic regression); fine-tuning more and fewer stages; the same
network from random weights for the same time (what transfer learning buys); the classical colour
histogram + k-NN baseline; and the other registered backbones whose ImageNet weights are on this
machine. Architectures of the paper's list that fishcore cannot train, or whose weights are missing,
are rows that say why they were skipped.

Each trained row gets the same seconds of training after its features are computed, and its seconds
are what it costs alone: features + training. Rows whose frozen trunk is the same (the paper's model
and the one without its residual head) compute the features once and share them; the second row is
charged the seconds the first one measured for them, so sharing shortens the comparison without
flattering any row. Results are written after every row (results.json, results.csv), so a crash or a
stop keeps what was done.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fishcore.config import DataConfig, TrainConfig
from fishcore.data.augment import build_transforms
from fishcore.data.images import load_image_file
from fishcore.errors import FishcoreError, WeightsError
from fishcore.events import Phase, StopRequested
from fishcore.models.backbones import BACKBONES, resolve_weights
from fishcore.models.config import ModelConfig
from fishcore.runtime import cpu_name, seed_everything
from fishcore.store.jsonfile import write_json
from fishcore.training.loop import ImageListDataset, compute_logits
from fishcore.training.run import TimeLimit, TrainingRun
from fishcore.training.strategies import STRATEGIES, Fitted, TrainingData

RESULTS_FILE = "results.json"
CSV_FILE = "results.csv"
LATENCY_PHOTOS = 20  # photos timed one by one per row (after 3 warm-up ones)
# The paper's other architectures that fishcore has no stage split for (so it cannot freeze and train them).
UNSUPPORTED = ("alexnet", "vgg11", "densenet121", "squeezenet1_0", "googlenet", "inception_v3")


@dataclass(frozen=True)
class Recipe:
    """One row of the comparison: what changes against the default, in words and as configs."""

    name: str
    what: str  # plain words for the table
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    kind: str = "network"  # "network" (a fishcore strategy) or "histogram" (colour histograms + k-NN)


def recipes() -> list[Recipe]:
    """The rows, default first; other backbones follow when their weights can be found here."""
    rows = [
        Recipe(
            "residual head (paper)",
            "pretrained MobileNetV2, stages 17+ fine-tuned, the paper's residual head (fast mode)",
            train={"mode": "fast"},
        ),
        Recipe(
            "no residual head",
            "the same with a plain linear classifier instead of the paper's block",
            model={"head": "linear"},
            train={"mode": "fast"},
        ),
        Recipe("instant", "whole pretrained network frozen, logistic regression on its features", train={"mode": "instant"}),
        Recipe("more fine-tuned", "the same with stages 10+ fine-tuned", model={"freeze_until": 10}, train={"mode": "fast"}),
        Recipe(
            "less fine-tuned",
            "the same with only the last stage fine-tuned",
            model={"freeze_until": 18},
            train={"mode": "fast"},
        ),
        Recipe(
            "from scratch",
            "MobileNetV2 and residual head from random weights, whole network trained, same time",
            model={"pretrained": False, "freeze_until": 0},
            train={"mode": "full"},
        ),
        Recipe(
            "colour histograms + k-NN", "the classical baseline: HSV colour histograms, 5 nearest neighbours", kind="histogram"
        ),
    ]
    for name in BACKBONES:
        if name != "mobilenet_v2":
            rows.append(
                Recipe(
                    name,
                    f"pretrained {name}, last stage fine-tuned, residual head (fast mode)",
                    model={"backbone": name},
                    train={"mode": "fast"},
                )
            )
    return rows  # fmt: skip


@dataclass
class Row:
    """One measured (or skipped) row."""

    name: str
    what: str
    accuracy: float | None = None
    macro_f1: float | None = None
    train_seconds: float | None = None
    trained_params: int | None = None
    total_params: int | None = None
    latency_ms: float | None = None
    skipped: str = ""  # why the row was not run
    feature_seconds: float | None = None  # of train_seconds: computing the frozen trunk's features
    features_from: str = ""  # the row whose features this one reused (and was charged for)


def hsv_histogram(image) -> np.ndarray:
    """8x8x8-bin HSV colour histogram of a photo (resized to 128 px), normalised to sum 1."""
    import cv2

    hsv = cv2.cvtColor(np.asarray(image.convert("RGB").resize((128, 128))), cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [8, 8, 8], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(h.sum(), 1)


def _scores(targets: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(targets, predicted)), float(f1_score(targets, predicted, average="macro"))


def _histogram_row(recipe: Recipe, data: TrainingData, check: Callable[[], None]) -> Row:
    from sklearn.neighbors import KNeighborsClassifier

    started = time.perf_counter()

    def features(samples):
        out = []
        for path, _ in samples:
            check()
            out.append(hsv_histogram(load_image_file(path)))
        return np.stack(out)

    clf = KNeighborsClassifier(n_neighbors=min(5, len(data.train))).fit(features(data.train), [t for _, t in data.train])
    seconds = time.perf_counter() - started
    test_x, test_y = features(data.test), np.array([t for _, t in data.test])
    accuracy, f1 = _scores(test_y, clf.predict(test_x))
    photos = [load_image_file(p) for p, _ in data.test[: LATENCY_PHOTOS + 3]]
    times = []
    for i, image in enumerate(photos):
        t = time.perf_counter()
        clf.predict(hsv_histogram(image)[None])
        if i >= 3:
            times.append(time.perf_counter() - t)
    return Row(recipe.name, recipe.what, accuracy, f1, round(seconds, 1), None, None, _median_ms(times))


def _median_ms(times: list[float]) -> float | None:
    return round(statistics.median(times) * 1000, 1) if times else None


@torch.inference_mode()
def _latency_ms(fitted: Fitted, data: TrainingData) -> float | None:
    """Median milliseconds to read, preprocess and classify one test photo with the torch model on one thread pool."""
    model, size = fitted.model.eval(), fitted.model_cfg.image_size
    transform = build_transforms(None, False, size)
    paths = [p for p, _ in data.test[: LATENCY_PHOTOS + 3]]
    times = []
    for i, path in enumerate(paths):
        t = time.perf_counter()
        model(transform(load_image_file(path, min_size=size)).unsqueeze(0))
        if i >= 3:
            times.append(time.perf_counter() - t)
    return _median_ms(times)


def _test_logits(fitted: Fitted, data: TrainingData, check: Callable[[], None]) -> tuple[torch.Tensor, torch.Tensor]:
    if fitted.test_logits is not None:
        return fitted.test_logits()
    size = fitted.model_cfg.image_size
    loader = torch.utils.data.DataLoader(ImageListDataset(data.test, build_transforms(None, False, size), size), batch_size=32)
    return compute_logits(fitted.model.cpu().eval(), loader, torch.device("cpu"), check)


def _trunk_key(model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple:
    """What a row's cached features depend on: rows with the same key can share them (only heads differ)."""
    return (train_cfg.mode, model_cfg.backbone, model_cfg.pretrained, model_cfg.freeze_until, model_cfg.image_size,
            train_cfg.views, repr(train_cfg.augment))  # fmt: skip


def _network_row(recipe: Recipe, data: TrainingData, seconds: float, scratch: Path, run: TrainingRun, shared: dict) -> Row:
    """Train and score one network row; ``shared`` maps a trunk key to (cache, feature seconds, the row that made it)."""
    model_cfg = ModelConfig(**recipe.model)
    # Every network row trains until validation stops improving or its time is up; epochs only bound it.
    train_cfg = TrainConfig(seed=run.data_cfg.seed, epochs=200, **recipe.train)
    key = _trunk_key(model_cfg, train_cfg)
    cache, feature_seconds, owner = shared.get(key, (scratch / f"trunk-{len(shared)}", None, ""))
    # The same training time for every network, counted after its features are computed; the row's seconds
    # include those features (from scratch has none: it trains the whole network for the whole time).
    row_run = run.derive(model=model_cfg, train=train_cfg, options=replace(run.options, cache_dir=str(cache)),
                         limit=TimeLimit(seconds, from_training=True))  # fmt: skip
    row_run.generator = seed_everything(run.data_cfg.seed)
    started = time.monotonic()
    fitted = STRATEGIES[train_cfg.mode](row_run, data)
    train_seconds = time.monotonic() - started
    measured = fitted.stats.get("feature_seconds")
    if feature_seconds is None:
        feature_seconds = measured
        if measured is not None:
            shared[key] = (cache, measured, recipe.name)  # the next row with this trunk reads them from the cache
    elif measured is not None:
        train_seconds += feature_seconds - measured  # charge what computing them cost, not the cache read
    logits, targets = _test_logits(fitted, data, run.check)
    accuracy, f1 = _scores(targets.numpy(), logits.argmax(1).numpy())
    model = fitted.model
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)  # instant mode: the linear head only
    total = sum(p.numel() for p in model.parameters())
    latency = _latency_ms(fitted, data)
    row = Row(recipe.name, recipe.what, accuracy, f1, round(train_seconds, 1), int(trained), total, latency)
    row.feature_seconds = None if feature_seconds is None else round(feature_seconds, 1)
    row.features_from = owner
    return row


def _skip_reason(recipe: Recipe) -> str:
    if recipe.model.get("backbone") and recipe.model.get("pretrained", True):
        try:
            resolve_weights(recipe.model["backbone"], allow_download=False)
        except WeightsError:
            name = recipe.model["backbone"]
            return f"its ImageNet weights ({BACKBONES[name].weights.filename}) are not on this machine"
    return ""


def _torchvision_weights_present(arch: str) -> bool:
    from torchvision.models import get_model_weights

    try:
        url = get_model_weights(arch).DEFAULT.url
    except (ValueError, AttributeError):
        return False
    return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)).is_file()


@dataclass
class Comparison:
    """What compare() produced: the rows and how they were made."""

    data_dir: str
    seed: int
    seconds_per_row: float
    processor: str
    test_photos: int
    classes: list[str]
    rows: list[Row]
    finished: bool = False

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "rows"}, "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        return cls(**{**d, "rows": [Row(**r) for r in d["rows"]]})

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RESULTS_FILE, self.to_dict())
        tmp = out / (CSV_FILE + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(asdict(self.rows[0]) if self.rows else asdict(Row("", ""))))
            writer.writeheader()
            writer.writerows(asdict(r) for r in self.rows)
        os.replace(tmp, out / CSV_FILE)


def read_comparison(out: str | os.PathLike) -> Comparison:
    path = Path(out) / RESULTS_FILE
    try:
        return Comparison.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise FishcoreError(f"{path} is not a saved comparison ({exc})") from exc


def _processor() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores"


def compare(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seconds_per_row: float = 30.0,
    seed: int = 0,
    data_cfg: DataConfig | None = None,
    run: TrainingRun | None = None,
    rows: list[Recipe] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> Comparison:
    """Train and score every recipe on one seeded split of data_dir; results saved in out_dir after each row.

    ``run`` carries the stop request and the event stream (its PHASE events count the rows done); its own
    configs are not used: each row brings its recipe's.
    """
    from fishcore.training.pipeline import prepare_data

    out = Path(out_dir).expanduser().resolve()
    data_cfg = replace(data_cfg or DataConfig(), seed=seed)
    run = (run or TrainingRun()).derive(data=data_cfg)
    rows = rows if rows is not None else recipes()
    total = len(rows)
    scratch = Path(tempfile.mkdtemp(prefix="fishcore-compare-"))
    try:
        _, _, data = prepare_data(data_dir, data_cfg, scratch, run.progress)
        if not data.test:
            raise FishcoreError("the split left no test photos to compare on; add photos or raise the test fraction")
        result = Comparison(str(data_dir), seed, seconds_per_row, _processor(), len(data.test), data.classes, [])
        shared: dict[tuple, tuple[Path, float, str]] = {}  # trunk key -> (feature cache, its seconds, first row)
        for i, recipe in enumerate(rows):
            reason = _skip_reason(recipe)
            try:
                run.progress(Phase.TRAINING, i, total)
                log(f"{i + 1}/{total} {recipe.name}...")
                if reason:
                    row = Row(recipe.name, recipe.what, skipped=reason)
                elif recipe.kind == "histogram":
                    row = _histogram_row(recipe, data, run.check)
                else:
                    row = _network_row(recipe, data, seconds_per_row, scratch, run, shared)
            except StopRequested:
                break
            except WeightsError as exc:
                row = Row(recipe.name, recipe.what, skipped=str(exc))
            result.rows.append(row)
            result.save(out)
        else:
            for arch in UNSUPPORTED:
                have = _torchvision_weights_present(arch)
                why = "fishcore has no stage split for it yet, so it cannot freeze and fine-tune it" + (
                    " (its ImageNet weights are on this machine)" if have else "; nor are its ImageNet weights here"
                )
                result.rows.append(Row(arch, f"pretrained {arch} (the paper's list)", skipped=why))
            result.finished = True
            run.progress(Phase.TRAINING, total, total)
        result.save(out)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
