"""`./run.sh bench --accuracy [ROOT]`: how accurate the defaults are on easy and on hard photos.

For each dataset of ROOT (default ../shared/data) that is present, split honestly (near-duplicates and
video tracks kept on one side), three kinds of row on the same seeded splits:

- the defaults: `train DATA` with nothing else set (auto mode, its time budget);
- the best of a small grid of explicit settings, each a CLI invocation a user could type;
- logistic regression on the pooled frozen ImageNet features of the default backbone.

Test macro-F1 and wall seconds per row; a dataset with few groups in its test split (EGU: about 15
videos) runs over several seeded splits and reports mean and spread. Every run is a child process.
Nothing here asserts: it measures and prints.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import measured_on, run_step


@dataclass(frozen=True)
class BenchSet:
    """A dataset of ../shared/data and how its README says to split it."""

    name: str
    group_pattern: str | None
    seeds: tuple[int, ...]
    note: str


SETS = (
    BenchSet("lsfd", None, (0,), "9 supermarket seafood classes, easy; near-duplicates grouped by perceptual hash"),
    BenchSet("f4k", r"fish_(\d+)_", (0, 1, 2), "4 reef species, small underwater crops; split by track"),
    BenchSet("egu", r"(\d{8}_\d{6})_", (0, 1, 2), "7 freshwater species from underwater video; split by video"),
)


@dataclass(frozen=True)
class Setting:
    """One explicit configuration: the CLI flags that give it, and the config fields they set."""

    flags: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


# Kept small: each EGU run takes minutes on 2 cores. EfficientNet-Lite0 fine-tuned from stage 9 or 12 was
# tried on EGU (split 0) and dropped: 0.57 test macro-F1 in 306 s from stage 12, behind MobileNetV2's 0.65.
GRID = (
    Setting("--mode fast --epochs 20 --freeze-until 10", train={"mode": "fast", "epochs": 20}, model={"freeze_until": 10}),
    Setting("--mode instant --backbone efficientnet_lite0", train={"mode": "instant"}, model={"backbone": "efficientnet_lite0"}),
)


def train_step(spec: str) -> dict:
    """One `train` run of the accuracy grid (spec: JSON of data, split seed, configs, out and cache folders)."""
    spec = json.loads(spec)
    from fishcore.config import DataConfig, TrainConfig
    from fishcore.models.config import ModelConfig
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    start = time.perf_counter()
    data = DataConfig(group_pattern=spec["group"], seed=spec["seed"])
    cfg = TrainConfig(seed=spec["seed"], **spec["train"])
    options = RunOptions(out_dir=spec["out"], cache_dir=spec["cache"])
    outcome = train_folder(spec["data"], TrainingRun(data, ModelConfig(**spec["model"]), cfg, options))
    if outcome.card is None:
        raise RuntimeError("training stopped before anything was trained")
    return {
        "wall": time.perf_counter() - start,
        "macro_f1": outcome.test_report.macro_f1,
        "per_class_f1": {c: m["f1"] for c, m in outcome.test_report.per_class.items()},
        "recipe": outcome.card.training.recipe,
        "model_dir": str(outcome.model_dir),
        "feature_seconds": outcome.card.training.feature_seconds,
    }


def logreg_step(spec: str) -> dict:
    """Logistic regression on frozen features on one seeded split (spec: JSON of data, split seed, group pattern)."""
    from benchmarks.bench import logreg_step
    from fishcore.config import DataConfig

    spec = json.loads(spec)

    return logreg_step(spec["data"], DataConfig(group_pattern=spec["group"], seed=spec["seed"]))


# The instant head as it was until 2026-12-07: C from four values by the validation split's log-loss (kept here only
# to measure the change against).
OLD_C = (0.02, 0.1, 0.5, 2.0)
HEAD_BACKBONES = ("mobilenet_v2", "efficientnet_lite2")


def heads_step(spec: str) -> dict:
    """On one seeded split and one backbone's clean cached features (cold cache): test accuracy and seconds of the
    old instant head, the new one (training/probe.py) and scikit-learn's LogisticRegressionCV (3-fold, accuracy)."""
    import warnings
    from dataclasses import replace

    import numpy as np
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    from fishcore.config import DataConfig
    from fishcore.models.backbones import get_backbone
    from fishcore.models.config import ModelConfig
    from fishcore.models.net import build_model
    from fishcore.training.features import FeatureStore
    from fishcore.training.pipeline import prepare_data
    from fishcore.training.probe import fit_probe

    spec = json.loads(spec)
    cache = Path(spec["cache"])
    _, _, data = prepare_data(spec["data"], DataConfig(group_pattern=spec["group"], seed=spec["seed"]), cache, lambda *a: None)
    backbone = get_backbone(spec["backbone"])
    cfg = ModelConfig(backbone=backbone.name, image_size=backbone.native_size)
    cfg = replace(cfg, head="linear", freeze_until=backbone.num_stages, train_frozen_bn=False)
    model, sha = build_model(cfg, len(data.classes))
    store = FeatureStore(cache / "features", model, cfg, sha, pooled=True)
    started = time.perf_counter()
    x, xv, xt = (store.features([(p, data.sha[p]) for p, _ in part], None, 0)[:, 0].float().numpy()
                 for part in (data.train, data.val, data.test))  # fmt: skip
    feature_seconds = time.perf_counter() - started
    y, yv, yt = (np.array([t for _, t in part]) for part in (data.train, data.val, data.test))
    mean, std = x.mean(0), x.std(0) + 1e-6
    z, zv, zt = (x - mean) / std, (xv - mean) / std, (xt - mean) / std
    out = {"feature_seconds": feature_seconds, "photos": len(y) + len(yv) + len(yt)}

    def timed(name: str, fit) -> None:
        begun = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = fit()
        out[name] = {"accuracy": float((clf.predict(zt) == yt).mean()), "seconds": time.perf_counter() - begun}

    def old():
        def loss(clf):
            p = np.clip(clf.predict_proba(zv), 1e-7, 1)
            return float(-np.log(p[np.arange(len(yv)), np.searchsorted(clf.classes_, yv)]).mean())

        fits = [LogisticRegression(C=c, max_iter=1000, class_weight="balanced").fit(z, y) for c in OLD_C]
        return min(fits, key=loss)

    timed("old", old)
    timed("new", lambda: fit_probe(z, y, data.train_groups, balanced=True))
    timed("sklearn", lambda: LogisticRegressionCV(cv=3, max_iter=5000).fit(z, y))
    return out


def _present(root: str, sets: tuple[BenchSet, ...]) -> tuple[Path, list[BenchSet]]:
    """ROOT resolved and the sets of it on disk; FileNotFoundError when there is none."""
    root_path = Path(root).expanduser().resolve()
    present = [s for s in sets if (root_path / s.name).is_dir()]
    if not present:
        raise FileNotFoundError(f"none of {', '.join(s.name for s in sets)} is in {root_path}")
    return root_path, present


def run_heads(root: str, sets: tuple[BenchSet, ...] = SETS, log=print, isolate: bool = True) -> str:
    """The instant head before and after, beside scikit-learn's probe, on MobileNetV2 and EfficientNet-Lite2."""
    root_path, present = _present(root, sets)
    lines = [
        measured_on(f"; data {root_path}; command `./run.sh bench --heads {root}`. Test accuracy of linear heads on the "
                    "clean cached features of each backbone at its own size (mean ± standard deviation over the seeded "
                    "splits), seconds per run: features with a cold cache, then each head's fit."),
        "",
        "| data (split) | backbone | features | instant head until 2026-12-07 | instant head now | scikit-learn probe |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="fishcore-heads-") as tmp:
        for bench_set in present:
            for backbone in HEAD_BACKBONES:
                runs = []
                for seed in bench_set.seeds:
                    log(f"{bench_set.name} split {seed}: {backbone}...")
                    cache = os.path.join(tmp, f"cache-{bench_set.name}-{seed}-{backbone}")
                    spec = {"data": str(root_path / bench_set.name), "group": bench_set.group_pattern, "seed": seed,
                            "backbone": backbone, "cache": cache}  # fmt: skip
                    runs.append(run_step("acc-heads", json.dumps(spec), isolate=isolate))

                def cell(name: str, runs=runs) -> str:
                    seconds = statistics.mean(r[name]["seconds"] for r in runs)
                    return f"{_summary([r[name]['accuracy'] for r in runs])} ({seconds:.1f} s)"

                features = statistics.mean(r["feature_seconds"] for r in runs)
                lines.append(f"| {bench_set.name} ({len(bench_set.seeds)} splits) | {backbone} | {features:.0f} s for "
                             f"{runs[0]['photos']} photos | {cell('old')} | {cell('new')} | {cell('sklearn')} |")  # fmt: skip
    return "\n".join(lines)


def _summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def run_accuracy(
    root: str, sets: tuple[BenchSet, ...] = SETS, grid: tuple[Setting, ...] = GRID, log=print, isolate: bool = True
) -> str:
    """Measure every dataset of ``root`` present on disk and return the Markdown table.

    Each run is a child process of its own unless ``isolate`` is False (benchmarks.bench.run_step).
    """

    def _run(kind: str, spec: str) -> dict:
        return run_step(kind, spec, isolate=isolate)

    root_path, present = _present(root, sets)
    lines = [
        measured_on(f"; data {root_path}; "
        f"command `./run.sh bench --accuracy {root}`. Test macro-F1 on honest splits (mean ± standard deviation "
        "over the seeded splits named), and wall seconds per run including feature extraction with a cold cache."),
        "",
        "| data (split) | splits | defaults: `train DATA` | best explicit setting | its flags "
        "| logistic regression on frozen features |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="fishcore-acc-") as tmp:
        for bench_set in present:
            data = str(root_path / bench_set.name)
            results: dict[str, list[dict]] = {"default": [], "logreg": [], **{s.flags: [] for s in grid}}
            for seed in bench_set.seeds:
                cache = os.path.join(tmp, f"cache-{bench_set.name}-{seed}")  # cold for the defaults, then shared
                base = {"data": data, "group": bench_set.group_pattern, "seed": seed, "cache": cache}
                log(f"{bench_set.name} split {seed}: defaults...")
                results["default"].append(
                    _run("acc-train", json.dumps({**base, "out": os.path.join(tmp, "m"), "model": {}, "train": {}}))
                )
                for setting in grid:
                    log(f"{bench_set.name} split {seed}: {setting.flags}...")
                    spec = {**base, "out": os.path.join(tmp, "m"), "model": setting.model, "train": setting.train}
                    results[setting.flags].append(_run("acc-train", json.dumps(spec)))
                log(f"{bench_set.name} split {seed}: logistic regression...")
                results["logreg"].append(_run("acc-logreg", json.dumps(base)))

            def f1s(key: str, results=results) -> list[float]:
                return [r["macro_f1"] for r in results[key]]

            def secs(key: str, results=results) -> str:
                return f"{statistics.mean(r['wall'] for r in results[key]):.0f} s"

            best = max((s.flags for s in grid), key=lambda k: statistics.mean(f1s(k)))
            lines.append(
                f"| {bench_set.name}: {bench_set.note} | {len(bench_set.seeds)} | "
                f"{_summary(f1s('default'))} in {secs('default')} | "
                f"{_summary(f1s(best))} in {secs(best)} | `{best}` | {_summary(f1s('logreg'))} in {secs('logreg')} |"
            )
            log(json.dumps({"set": bench_set.name, **{k: f1s(k) for k in results}}))
    return "\n".join(lines) + "\n\n" + run_heads(root, sets, log=log, isolate=isolate)
