"""`./run.sh bench DATA` (`python -m benchmarks DATA`): training and prediction speed, side by side with the usual ways.

Every row runs in its own child process on the same data and the same seeded split, so each peak
memory figure is that row's alone. Nothing here asserts a time: it measures and prints.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import measured_on, run_step
from fishcore.config import DataConfig, TrainConfig
from fishcore.models.config import ModelConfig


def train_step(data: str, out: str, cache: str, mode: str, epochs: str, cap: str, precision: str) -> dict:
    """One whole `train` run, timed: wall, features and fitting seconds, test scores."""
    epochs, cap = int(epochs), float(cap) or None
    import threading

    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    cfg = replace(TrainConfig(), mode=mode, epochs=epochs, precision=precision)
    run = TrainingRun(DataConfig(), ModelConfig(), cfg, RunOptions(out_dir=str(out), cache_dir=str(cache)))
    timer = threading.Timer(cap, run.request_stop) if cap else None
    if timer:
        timer.start()
    start = time.perf_counter()
    outcome = train_folder(data, run)
    if outcome.card is None:
        raise RuntimeError(f"{mode} training stopped before anything was trained (cap {cap}s)")
    wall = time.perf_counter() - start
    if timer:
        timer.cancel()
    t = outcome.card.training
    test = outcome.test_report
    if test is None and outcome.model_dir is not None:
        # The cap fell after training, during calibration or the test evaluation: test the saved model now.
        from fishcore.inference.evaluate import evaluate_files, evaluation_samples
        from fishcore.inference.predict import Predictor

        test = evaluate_files(Predictor.load(outcome.model_dir), evaluation_samples(outcome.card, data, "test"))
    return {
        "wall": wall,
        "features": t.feature_seconds,
        "fit": t.seconds,
        "accuracy": test.accuracy,
        "macro_f1": test.macro_f1,
        "stop": t.stop_reason,
        "engine": t.engine,
        "epochs": t.epochs,
        "precision": t.precision,
    }


def _split_arrays(data: str, data_cfg: DataConfig | None = None):
    from fishcore.training.pipeline import prepare_split

    result, split = prepare_split(data, data_cfg or DataConfig())
    root = result.root
    classes = result.classes

    def pack(paths):
        return [str(root / p) for p in paths], [classes.index(p.split("/")[0]) for p in paths]

    return pack(split.train), pack(split.test)


def _features_baseline(data: str, make_embed, classifier, data_cfg: DataConfig | None = None) -> dict:
    """Time feature extraction (including building the extractor) and fitting; score on the test split."""
    from sklearn.metrics import accuracy_score, f1_score

    (train_x, train_y), (test_x, test_y) = _split_arrays(data, data_cfg)
    start = time.perf_counter()
    embed = make_embed()
    xtr = embed(train_x)
    extract = time.perf_counter() - start
    classifier.fit(xtr, train_y)
    fit = time.perf_counter() - start - extract
    pred = classifier.predict(embed(test_x))
    return {
        "wall": extract + fit,
        "features": extract,
        "fit": fit,
        "accuracy": accuracy_score(test_y, pred),
        "macro_f1": f1_score(test_y, pred, average="macro"),
        "engine": getattr(embed, "engine", None),
    }


def logreg_step(data: str, data_cfg: DataConfig | None = None) -> dict:
    """What Teachable Machine-style tools do: frozen ImageNet features, a linear classifier on top."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from fishcore.data.augment import build_transforms
    from fishcore.data.images import load_image
    from fishcore.inference.engine import Engine
    from fishcore.models.net import build_model

    def make_embed():
        model, _ = build_model(ModelConfig(), 2)
        engine = Engine(torch.nn.Sequential(model.backbone, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()), 224)
        tf = build_transforms(None, False, 224)

        def embed(paths):
            batches = [
                torch.stack([tf(load_image(p, min_size=224)) for p in paths[i : i + 32]]) for i in range(0, len(paths), 32)
            ]
            return np.concatenate([engine(b).numpy() for b in batches])

        embed.engine = engine.name
        return embed

    return _features_baseline(data, make_embed, LogisticRegression(max_iter=2000), data_cfg)


def knn_step(data: str) -> dict:
    """The older fish-type papers' method: colour histograms in HSV and nearest neighbours."""
    from sklearn.neighbors import KNeighborsClassifier

    from fishcore.data.images import load_image
    from fishcore.training.compare import hsv_histogram

    def hist(path):
        return hsv_histogram(load_image(path))

    return _features_baseline(data, lambda: lambda paths: np.stack([hist(p) for p in paths]), KNeighborsClassifier(n_neighbors=5))


def latency_step(data: str, model_dir: str, engine: str, n: str) -> dict:
    n = int(n)
    from fishcore.inference.predict import Predictor
    from fishcore.store.model_files import load_model

    (_, _), (test_x, _) = _split_arrays(data)
    photos = [Path(p).read_bytes() for p in (test_x * (1 + n // max(len(test_x), 1)))[:n]]
    predictor = Predictor(*load_model(model_dir), engine=engine)
    for b in photos[:10]:
        predictor.predict([b])
    times = []
    for b in photos:
        t = time.perf_counter()
        predictor.predict([b])
        times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    predictor.predict(photos, batch_size=32)
    rate = len(photos) / (time.perf_counter() - t)
    q = statistics.quantiles(times, n=20)
    return {"p50_ms": statistics.median(times), "p95_ms": q[18], "per_s_batch32": rate, "engine": predictor.engine_name}


def probe_step() -> dict:
    """How fast this machine is right now: a 2048x2048 float32 matmul (about 290 GFLOP/s at best here).

    Shared machines drift; a probe before and after the rows says whether the run was a fast or a slow one.
    """
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    times: list[float] = []
    while len(times) < 15 and (len(times) < 5 or sum(times) < 1.0):  # 15 products, or at least 5 and a second
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return {"gflops": 2 * 2048**3 / statistics.median(times) / 1e9}


def _mb(r: dict) -> str:
    return "-" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"


def run_benchmark(data: str, naive_cap: float = 600.0, photos: int = 120, log=print, isolate: bool = True) -> str:
    """Measure every row and return the table as Markdown (``isolate``: each row in its own process, see run_step)."""
    data = str(Path(data).expanduser().resolve())

    def _run(kind: str, *args: object) -> dict:
        return run_step(kind, *args, isolate=isolate)

    with tempfile.TemporaryDirectory(prefix="fishcore-bench-") as tmp:
        cache = os.path.join(tmp, "cache")
        epochs = TrainConfig().epochs
        probe_before = _run("probe")["gflops"]
        log("0/6 instant mode (logistic regression on cached features), cold cache...")
        instant = _run("train", data, os.path.join(tmp, "m_instant"), cache, "instant", epochs, 0, "auto")
        log("1/6 default training, cold cache...")
        cold = _run("train", data, os.path.join(tmp, "m_fast"), cache, "fast", epochs, 0, "auto")
        log("2/6 default training, warm cache...")
        warm = _run("train", data, os.path.join(tmp, "m_fast2"), cache, "fast", epochs, 0, "auto")
        log(f"3/6 naive baseline (full network, augmentation on the fly; cap {naive_cap:.0f}s)...")
        # What a standard torchvision fine-tuning script does on a CPU: float32 throughout.
        naive = _run("train", data, os.path.join(tmp, "m_full"), os.path.join(tmp, "unused"), "full", epochs, naive_cap, "fp32")
        log("4/6 frozen features + logistic regression...")
        logreg = _run("logreg", data)
        log("5/6 k-NN on HSV colour histograms...")
        knn = _run("knn", data)
        log("6/6 prediction latency...")
        lat = {e: _run("latency", data, os.path.join(tmp, "m_fast"), e, photos) for e in ("torch", "onnx")}
        probe_after = _run("probe")["gflops"]

    def row(name, r):
        feat = f"{r['features']:.1f}" if r.get("features") is not None else "-"
        return f"| {name} | {r['wall']:.1f} | {feat} | {r['fit']:.1f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {_mb(r)} |"

    lines = [
        measured_on(f", torch threads "
        f"{__import__('torch').get_num_threads()}; data {data}; command `./run.sh bench {data}`. "
        f"Machine speed probe (2048x2048 float32 matmul): {probe_before:.0f} GFLOP/s before the rows, "
        f"{probe_after:.0f} after."),
        "",
        "| method | wall s | features s | fit s | test accuracy | test macro-F1 | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
        row(f"1. fishcore fast mode (cold cache, trunk in {cold.get('engine')}, tail in {cold.get('precision')})", cold),
        row("2. fishcore fast mode (warm cache)", warm),
        row(
            f"3. naive fine-tune (full mode, on-the-fly augmentation, {naive['precision']}, {naive['epochs']} epochs, "
            f"{naive['stop']})",
            naive,
        ),
        row(f"4. frozen features + logistic regression ({logreg.get('engine')})", logreg),
        row("4b. fishcore instant mode (the same idea as a strategy, cold cache; a saved, calibrated model)", instant),
        row("5. k-NN (k=5) on HSV colour histograms", knn),
        "",
        f"Speed-up of 1 over 3: {naive['wall'] / cold['wall']:.1f}x; of 2 over 3: {naive['wall'] / warm['wall']:.1f}x "
        "(wall time, same split, same seed).",
        "",
        "| prediction (JPEG bytes to probabilities) | p50 ms (batch 1) | p95 ms (batch 1) | photos/s (batch 32) | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for name, r in lat.items():
        lines.append(
            f"| {r['engine']} ({name} requested) | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['per_s_batch32']:.0f} | {_mb(r)} |"
        )
    if not isolate:
        lines.append("")
        lines.append("(All rows ran in one process: no memory figures, and caches in memory may carry over between rows.)")
    return "\n".join(lines)

