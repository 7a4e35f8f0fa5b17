"""`./run.sh bench --field [ROOT]`: the learning curve of the field loop, measured.

On each shared set with an honest split (F4K by track, EGU by video): start from a model trained on a
few photos per species, stream the rest of the training split in rounds as if photographed in the
field, confirm the review queue's first photos each round (the true labels from the folders), retrain
instant mode (logistic regression on cached frozen MobileNetV2 features, exactly what `train --mode
instant` fits), and score macro-F1 on the fixed test split after every round. The same stream is run
with the photos to confirm drawn at random, and a model is trained on every training label at once.
The queue is the product's: fishcore.store.catchlog.queue.review_order over review_score, with the
model's confidence and the photo's cosine distance to its nearest training photo against the
verdicts' own "unfamiliar" line (1.25 x the largest distance of a correctly named validation photo).

It prints per round: photos confirmed so far, test macro-F1 for queue and random order, and the
seconds each round took with the features of the new photos and the fitting apart; then per-photo
against per-video (per-track) accuracy of the final models, several shots of one fish combined by
averaging log-probabilities as Predict's "these photos show one fish" does. Nothing here asserts.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import SETS, BenchSet
from benchmarks.common import measured_on

INITIAL_PER_SPECIES = 3  # the model a non-coder starts from
ROUND = 50  # new field photos per round
CONFIRM = 10  # of which the user confirms this many (the queue's first, or random ones)
DISTANCE_MARGIN = 1.25  # the verdicts' rule (fishcore.inference.openset)


def _features(root: Path, bench_set: BenchSet, seed: int, cache: Path):
    """The honest split of one set and the pooled instant-mode features of every photo in it (cached)."""
    from fishcore.config import DataConfig
    from fishcore.models.backbones import get_backbone
    from fishcore.models.config import ModelConfig
    from fishcore.models.net import build_model
    from fishcore.training.features import FeatureStore
    from fishcore.training.pipeline import prepare_data

    data_cfg = DataConfig(group_pattern=bench_set.group_pattern, seed=seed)
    scan_result, _, data = prepare_data(root, data_cfg, cache, lambda *a: None)
    cfg = ModelConfig(head="linear", freeze_until=get_backbone("mobilenet_v2").num_stages)
    model, sha = build_model(cfg, len(data.classes))
    store = FeatureStore(cache / "features", model, cfg, sha, pooled=True)
    phash = {str(scan_result.root / i.path): i.phash for i in scan_result.items}

    def of(samples):
        started = time.perf_counter()
        f = store.features([(p, data.sha[p]) for p, _ in samples], None, 0)[:, 0].float().numpy() if samples else np.zeros((0, 1))
        return f, time.perf_counter() - started

    return data, of, phash


def _fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int):
    """Instant mode's fit (training/probe.py: standardised, balanced, C by grouped cross-validation) as a
    predict_proba over every class."""
    from fishcore.training.probe import fit_probe

    mean, std = x.mean(0), x.std(0) + 1e-6
    clf = fit_probe((x - mean) / std, y, groups, balanced=True)

    def proba(z: np.ndarray) -> np.ndarray:
        out = np.full((len(z), n_classes), 1e-9)
        out[:, clf.classes_] = clf.predict_proba((z - mean) / std)
        return out / out.sum(1, keepdims=True)

    return proba


def _nearest_distance(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    a = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)
    b = reference / (np.linalg.norm(reference, axis=1, keepdims=True) + 1e-9)
    return 1.0 - (a @ b.T).max(1)


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p.argmax(1), average="macro"))


def _per_group_accuracy(p: np.ndarray, y: np.ndarray, groups: list[str]) -> float:
    """Accuracy with every group's photos combined into one answer (mean log-probability), one vote per group."""
    votes = {}
    for g in sorted(set(groups)):
        rows = [i for i, h in enumerate(groups) if h == g]
        votes[g] = (np.log(p[rows]).mean(0).argmax() == y[rows[0]])
    return float(np.mean(list(votes.values())))


def _stream(order: str, data, feats, phash, train_f, y_train, val, yv, test, yt, n_classes, seed, log):
    """One field stream: the round-by-round test macro-F1 and seconds, and the final model's probabilities on test."""
    rng = random.Random(seed)
    g_train = np.asarray(data.train_groups)
    by_class: dict[int, list[int]] = {}
    for i, (_, t) in enumerate(data.train):
        by_class.setdefault(t, []).append(i)
    labelled = sorted(i for c in sorted(by_class) for i in rng.sample(by_class[c], min(INITIAL_PER_SPECIES, len(by_class[c]))))
    arriving = [i for i in range(len(data.train)) if i not in set(labelled)]
    rng.shuffle(arriving)
    waiting: list[int] = []  # arrived, not confirmed yet (the queue)
    rows = []
    proba = _fit(train_f[labelled], y_train[labelled], g_train[labelled], n_classes)
    rows.append((len(labelled), _macro_f1(yt, proba(test)), 0.0, 0.0))
    from fishcore.store.catchlog.queue import review_order, review_score

    while arriving or waiting:
        new, arriving = arriving[:ROUND], arriving[ROUND:]
        started = time.perf_counter()
        _, feature_seconds = feats([data.train[i] for i in new])  # the round's new photos through the network
        waiting += new
        if not waiting:
            break
        if order == "queue":
            z = train_f[waiting]
            conf = proba(z).max(1)
            dist = _nearest_distance(z, train_f[labelled])
            right = proba(val).argmax(1) == yv
            threshold = DISTANCE_MARGIN * float(_nearest_distance(val[right], train_f[labelled]).max()) if right.any() else None
            scores = [review_score(float(c), float(d), threshold) for c, d in zip(conf, dist, strict=True)]
            hashes = [phash.get(data.train[i][0]) for i in waiting]
            groups = review_order(scores, hashes)
            chosen = [waiting[i] for g in groups[:CONFIRM] for i in g]  # a near-copy group is confirmed as one
        else:
            chosen = rng.sample(waiting, min(CONFIRM, len(waiting)))
        labelled += chosen
        waiting = [i for i in waiting if i not in set(chosen)]
        fit_started = time.perf_counter()
        proba = _fit(train_f[labelled], y_train[labelled], g_train[labelled], n_classes)
        fit_seconds = time.perf_counter() - fit_started
        rows.append((len(labelled), _macro_f1(yt, proba(test)), feature_seconds, fit_seconds))
        log(f"{order}: {len(labelled)} labelled, test macro-F1 {rows[-1][1]:.3f} ({time.perf_counter() - started:.1f} s)")
    return rows, proba(test)


def run_field(root: str, sets: tuple[BenchSet, ...] | None = None, seed: int = 0, log=print) -> str:
    root_path = Path(root).expanduser().resolve()
    chosen = [s for s in (sets or SETS) if s.name in ("f4k", "egu") and (root_path / s.name).is_dir()]
    if not chosen:
        raise FileNotFoundError(f"neither f4k nor egu is in {root_path}")
    lines = [
        measured_on(f"; data {root_path}; command `./run.sh bench --field {root}`; split seed {seed}."),
        f"Start: {INITIAL_PER_SPECIES} labelled photos per species; then rounds of {ROUND} new field photos, of which "
        f"{CONFIRM} are confirmed (a near-copy group counts as one). Instant mode retrained after every round; test "
        "macro-F1 on the fixed test split.",
    ]
    with tempfile.TemporaryDirectory(prefix="fishcore-field-") as tmp:
        for bench_set in chosen:
            data, feats, phash = _features(root_path / bench_set.name, bench_set, seed, Path(tmp))
            log(f"{bench_set.name}: features of {len(data.train) + len(data.val) + len(data.test)} photos...")
            (train_f, cold), (val, _), (test, _) = feats(data.train), feats(data.val), feats(data.test)
            y_train = np.array([t for _, t in data.train])
            g_train = np.asarray(data.train_groups)
            yv, yt = np.array([t for _, t in data.val]), np.array([t for _, t in data.test])
            n = len(data.classes)
            curves, final = {}, {}
            for order in ("queue", "random"):
                args = (data, feats, phash, train_f, y_train, val, yv, test, yt, n, seed, log)
                curves[order], final[order] = _stream(order, *args)
            started = time.perf_counter()
            everything = _fit(train_f, y_train, g_train, n)
            all_seconds = time.perf_counter() - started
            all_f1 = _macro_f1(yt, everything(test))
            pattern = re.compile(bench_set.group_pattern)
            groups = [pattern.search(Path(p).name).group(1) for p, _ in data.test]
            lines += [
                "",
                f"**{bench_set.name}** ({bench_set.note}): {len(data.train)} training photos, {len(data.test)} test photos "
                f"in {len(set(groups))} {'videos' if bench_set.name == 'egu' else 'tracks'}; features of every photo from a "
                f"cold cache {cold:.1f} s. All {len(data.train)} labels at once: test macro-F1 {all_f1:.3f} "
                f"(fit {all_seconds:.1f} s).",
                "",
                "| round | queue: photos confirmed | queue: test macro-F1 | random: photos confirmed | random: test macro-F1 "
                "| round (queue): features s | round (queue): fit s |",
                "|---|---|---|---|---|---|---|",
            ]
            # The queue confirms CONFIRM items a round, a near-copy group being one item, so its photo count can run
            # ahead of random order's: each row is one round, with each order's own count.
            empty = (None, None, None, None)
            for k in range(max(len(curves["queue"]), len(curves["random"]))):
                q = curves["queue"][k] if k < len(curves["queue"]) else empty
                r = curves["random"][k] if k < len(curves["random"]) else empty

                def cell(v, digits=3):
                    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

                cells = [str(k), cell(q[0]), cell(q[1]), cell(r[0]), cell(r[1]), cell(q[2], 1), cell(q[3], 1)]
                lines.append("| " + " | ".join(cells) + " |")

            def reached(curve, all_f1=all_f1) -> str:
                hit = next((c[0] for c in curve if c[1] >= all_f1 - 0.005), None)
                return "not reached" if hit is None else f"{hit} photos"

            lines += [
                "",
                f"All-labels score (within 0.005) reached by the queue at {reached(curves['queue'])}, by random order at "
                f"{reached(curves['random'])}; after the whole stream: queue {curves['queue'][-1][1]:.3f}, random "
                f"{curves['random'][-1][1]:.3f}, all labels {all_f1:.3f}.",
                "",
                f"| final model | accuracy per photo | per {'video' if bench_set.name == 'egu' else 'track'}, shots combined |",
                "|---|---|---|",
            ]
            for name, p in (("queue order", final["queue"]), ("random order", final["random"]), ("all labels", everything(test))):
                lines.append(f"| {name} | {float((p.argmax(1) == yt).mean()):.3f} | {_per_group_accuracy(p, yt, groups):.3f} |")
    return "\n".join(lines)


