"""`./run.sh bench --promise [ROOT]`: does "confident" keep its promise on new photos, and do the sets cover?

On each shared set with an honest split (F4K by track, EGU by video), over several seeded splits, a
model is trained with the defaults (`train DATA --group-pattern ...`, nothing else). Its held-out
predictions (validation, and out-of-fold over the training photos: heldout.npz in the model folder)
are what every way of choosing compared here may use; the test split is what each is judged on, with
the verdicts as the product gives them (the open-set check included):

- today: temperature on validation, the fixed threshold 0.6;
- validation: temperature on validation, the lowest threshold at which validation's confident answers
  are 95 % right (no margin), and the same with a Clopper-Pearson margin at 90 % confidence;
- held-out: temperature on validation + out-of-fold predictions, the threshold without and with the
  margin, each photo counted or (what training does) the photos of one track or video counted as one;
  and the margin's descent stopped at the first failure.

Per way: confident answers right on test (all splits pooled, and each split), right answers still
confident, the thresholds and on how many splits the margin backed them. Then prediction sets at
90 %: split conformal with the score 1 - p(true species) (what the product uses) and adaptive
prediction sets (APS, the summed probability down to the true species), each fitted on validation
alone and on all held-out predictions; coverage on test (overall and among the answers that are not
confident) and the mean set size. Nothing here asserts.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.accuracy import SETS, BenchSet
from benchmarks.common import measured_on

PROMISE, COVERAGE = 0.95, 0.9


@dataclass
class Scored:
    """One trained model: held-out logits and kinds, test logits, targets and verdict signals."""

    name: str
    recipe: str
    seconds: float
    held_logits: np.ndarray
    held_targets: np.ndarray
    held_val: np.ndarray  # bool: a validation row (else out-of-fold)
    held_groups: np.ndarray  # the group (track, video) of each held-out row
    test_logits: np.ndarray
    test_targets: np.ndarray
    familiar: np.ndarray  # bool per test photo: passes the open-set check (else never confident)
    test_groups: list[str]  # the track or video of each test photo
    fold_seconds: float  # of the out-of-fold refits
    precision: str  # of the training steps (bf16 where the processor has it, else fp32)


def _train_and_score(root: Path, bench_set: BenchSet, seed: int, work: Path, log, mode: str = "auto") -> Scored:
    from fishcore.config import DataConfig, TrainConfig
    from fishcore.data.split import resolve
    from fishcore.inference.predict import Predictor
    from fishcore.models.config import ModelConfig
    from fishcore.store.model_files import HELDOUT_FILE, read_card
    from fishcore.training.heldout import VALIDATION, HeldOut
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    out = work / f"{bench_set.name}-{seed}"
    if not (out / HELDOUT_FILE).is_file():
        log(f"{bench_set.name} split {seed}: training with the defaults ({mode} mode)...")
        train = TrainConfig(seed=seed, mode=mode)
        run = TrainingRun(DataConfig(group_pattern=bench_set.group_pattern, seed=seed), ModelConfig(), train,
                          RunOptions(out_dir=str(out), cache_dir=str(work / "cache")))  # fmt: skip
        train_folder(root / bench_set.name, run)
    card = read_card(out)
    group = re.compile(bench_set.group_pattern)
    held = HeldOut.load(out / HELDOUT_FILE)
    predictor = Predictor.load(out, engine="auto")
    files = resolve(card.test_root, card.split["test"])
    scores = predictor.score_files([p for p, _ in files])
    distances = predictor.openset.distances(scores.features)
    familiar = distances <= predictor.openset.distance_threshold
    return Scored(
        f"{bench_set.name}-{seed}", card.training.recipe or card.training.mode, card.training.total_seconds,
        held.logits.numpy(), held.targets.numpy(), np.array([k == VALIDATION for k in held.kinds]),
        np.arange(len(held)) if held.groups is None else held.groups,
        scores.logits.numpy(), np.array([card.classes.index(label) for _, label in files]), familiar,
        [group.search(Path(p).name).group(1) for p, _ in files], float(card.promise.get("seconds") or 0.0),
        card.training.precision,
    )  # fmt: skip


def _softmax(logits: np.ndarray, t: float) -> np.ndarray:
    """The product's calibrated probabilities (fishcore.inference.calibration), for numpy logits."""
    import torch

    from fishcore.inference.calibration import calibrated_probabilities

    return calibrated_probabilities(torch.as_tensor(logits), t).numpy()


def _temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    import torch

    from fishcore.inference.calibration import fit_temperature

    return fit_temperature(torch.as_tensor(logits), torch.as_tensor(targets, dtype=torch.long))


# (words, held-out rows used, margin level or None for the fixed 0.6, descend and stop at the first failure,
# photos of one track or video counted as one in the margin)
WAYS = (
    ("today: validation temperature, fixed 0.6", "val", None, False, False),
    ("validation, no margin", "val", 0.0, False, False),
    ("validation + margin (90 %)", "val", 0.9, False, False),
    ("held-out (validation + out-of-fold), no margin", "all", 0.0, False, False),
    ("held-out + margin (90 %), each photo counted", "all", 0.9, False, False),
    ("held-out + margin (90 %), each photo counted, descending to the first failure", "all", 0.9, True, False),
    ("held-out, each track or video weighted equally, no margin", "all", "weighted", False, True),
    ("held-out + margin (90 %), a track or video counted as one: what training does", "all", 0.9, False, True),
)
PRODUCT = WAYS[-1]


def _threshold_row(m: Scored, source: str, level: float | str | None, sequential: bool, grouped: bool) -> dict:
    from fishcore.inference.calibration import choose_threshold

    rows = m.held_val if source == "val" else np.ones(len(m.held_targets), bool)
    logits, targets = m.held_logits[rows], m.held_targets[rows]
    t = _temperature(logits, targets)
    backed = None
    if level is None:
        threshold = 0.6
    elif level == "weighted":
        p = _softmax(logits, t)
        threshold = _weighted_threshold(p.max(1), p.argmax(1) == targets, m.held_groups[rows])
    else:
        p = _softmax(logits, t)
        groups = m.held_groups[rows] if grouped else None
        chosen = choose_threshold(p.max(1), p.argmax(1) == targets, PROMISE, level, sequential=sequential, groups=groups)
        threshold, backed = chosen.threshold, chosen.backed and level > 0
    test = _softmax(m.test_logits, t)
    right = test.argmax(1) == m.test_targets
    confident = m.familiar & (test.max(1) >= threshold)
    return {
        "right_confident": int((right & confident).sum()),
        "confident": int(confident.sum()),
        "right": int(right.sum()),
        "threshold": threshold,
        "backed": backed,
        "mask": confident,
        "wrong_groups": sorted({g for g, c, r in zip(m.test_groups, confident, right, strict=True) if c and not r}),
        "wrong": int((confident & ~right).sum()),
    }


def _weighted_threshold(conf: np.ndarray, right: np.ndarray, groups: np.ndarray, floor: float = 0.6) -> float:
    """The lowest threshold at which the confident answers' share, each group's answers weighing 1 in all, is 95 %."""
    order = np.argsort(-conf, kind="stable")
    chosen = None
    for i in range(len(order)):
        if conf[order[i]] < floor:
            break
        _, where, sizes = np.unique(groups[order[: i + 1]], return_inverse=True, return_counts=True)
        weights = 1.0 / sizes[where]
        if (weights * right[order[: i + 1]]).sum() / weights.sum() >= PROMISE:
            chosen = float(conf[order[i]])
    return chosen if chosen is not None else 1.0


def _aps_scores(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Adaptive prediction sets' score: the summed probability of the species ranked at or above the true one."""
    order = np.argsort(-probs, axis=1)
    ranked = np.take_along_axis(probs, order, 1)
    cum = np.cumsum(ranked, 1)
    rank = np.argmax(order == targets[:, None], axis=1)
    return cum[np.arange(len(targets)), rank]


def _sets(m: Scored, source: str, kind: str, confident: np.ndarray) -> dict:
    from fishcore.inference.calibration import SetRule, conformal_quantile

    rows = m.held_val if source == "val" else np.ones(len(m.held_targets), bool)
    logits, targets = m.held_logits[rows], m.held_targets[rows]
    t = _temperature(logits, targets)
    held, test = _softmax(logits, t), _softmax(m.test_logits, t)
    if kind == "lac":
        rule = SetRule(COVERAGE, conformal_quantile(1 - held[np.arange(len(targets)), targets], COVERAGE), len(targets))
        members = [set(rule.members(p).tolist()) for p in test]
    else:
        q = conformal_quantile(_aps_scores(held, targets), COVERAGE)
        order = np.argsort(-test, axis=1)
        cum = np.cumsum(np.take_along_axis(test, order, 1), 1)
        members = [set(o[: int(np.searchsorted(c, q - 1e-12)) + 1].tolist()) for o, c in zip(order, cum, strict=True)]
    covered = np.array([y in s for y, s in zip(m.test_targets, members, strict=True)])
    size = np.array([len(s) for s in members])
    unsure = ~confident
    return {
        "coverage": covered.mean(),
        "coverage_unsure": covered[unsure].mean() if unsure.any() else float("nan"),
        "size": size.mean(),
        "size_unsure": size[unsure].mean() if unsure.any() else float("nan"),
    }


def _auroc(m: Scored) -> str:
    from sklearn.metrics import roc_auc_score

    probs = _softmax(m.test_logits, _temperature(m.held_logits, m.held_targets))
    right = probs.argmax(1) == m.test_targets
    return f"{roc_auc_score(right, probs.max(1)):.2f}" if 0 < right.sum() < len(right) else "-"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def _mean(values) -> str:
    values = [v for v in values if v == v]
    return f"{statistics.mean(values):.3f}" if values else "-"


def run_promise(
    root: str, sets: tuple[BenchSet, ...] | None = None, work: str | None = None, log=print, mode: str = "auto"
) -> str:
    """Train (or reuse, in ``work``) a default model per set and split; return the tables as Markdown.

    ``mode`` other than auto is for the tests (instant mode trains in seconds)."""
    base = Path(root).expanduser().resolve()
    chosen = [s for s in (sets or SETS) if s.group_pattern and (base / s.name).is_dir()]
    if not chosen:
        raise FileNotFoundError(f"none of the sets with an honest group split is in {base}")
    with tempfile.TemporaryDirectory(prefix="fishcore-promise-") as tmp:
        folder = Path(work).expanduser() if work else Path(tmp)
        models = {s.name: [_train_and_score(base, s, seed, folder, log, mode) for seed in s.seeds] for s in chosen}
    what = (
        f"; data {base}; command `./run.sh bench --promise {root}`. Models trained with the defaults on each seeded "
        "split; every way may use only the held-out predictions, all are judged on the test split. Confident = "
        "familiar (the open-set check) and the calibrated top probability at or over the threshold."
    )
    header = " | ".join(f"{s.name} confident answers right: all splits (each split) | {s.name} right answers confident | "
                        f"{s.name} thresholds (backed by the margin)" for s in chosen)  # fmt: skip
    lines = [measured_on(what), "", f"| way of choosing the threshold | {header} |", "|---|" + "---|---|---|" * len(chosen)]
    confident_of: dict[tuple[str, int], np.ndarray] = {}
    for way, *how in WAYS:
        cells = []
        for s in chosen:
            rows = [_threshold_row(m, *how) for m in models[s.name]]
            if way == PRODUCT[0]:
                for i, r in enumerate(rows):
                    confident_of[(s.name, i)] = r["mask"]
            k, n, right = (sum(r[key] for r in rows) for key in ("right_confident", "confident", "right"))
            each = ", ".join(f"{r['right_confident']}/{r['confident']}" for r in rows)
            cells += [
                f"{_share(k, n)} ({each})",
                f"{_share(k, right)} ({k}/{right})",
                " / ".join(f"{r['threshold']:.2f}" for r in rows)
                + (f" ({sum(r['backed'] for r in rows)} of {len(rows)})" if rows[0]["backed"] is not None else ""),
            ]
        lines.append(f"| {way} | " + " | ".join(cells) + " |")
        if way == PRODUCT[0]:
            product = {s.name: [_threshold_row(m, *how) for m in models[s.name]] for s in chosen}
    misses = "; ".join(
        f"{name} split {i}: {r['wrong']} photos from {len(r['wrong_groups'])} {'track' if name == 'f4k' else 'video'}(s)"
        for name, rows in product.items() for i, r in enumerate(rows) if r["wrong"]
    )  # fmt: skip
    lines += ["", f"Confident mistakes of what training does, by the track or video they come from: {misses or 'none'}."]
    lines += ["", "How well the calibrated top probability tells right from wrong test answers (AUROC per split): "
              + "; ".join(f"{s.name} " + ", ".join(_auroc(m) for m in models[s.name]) for s in chosen) + "."]  # fmt: skip
    lines += [
        "",
        f"Prediction sets at {COVERAGE:.0%} (temperature and set rule fitted on the same held-out rows; "
        "'not confident' are the test photos the product's threshold leaves not confident):",
        "",
        "| set rule, fitted on | "
        + " | ".join(
            f"{s.name} coverage | {s.name} coverage, not confident | {s.name} mean size | {s.name} size, not confident"
            for s in chosen
        )
        + " |",
        "|---|" + "---|---|---|---|" * len(chosen),
    ]
    for label, source, kind in (
        ("1 - p(true), validation", "val", "lac"),
        ("1 - p(true), held-out: what the product uses", "all", "lac"),
        ("APS, validation", "val", "aps"),
        ("APS, held-out", "all", "aps"),
    ):
        cells = []
        for s in chosen:
            rows = [_sets(m, source, kind, confident_of[(s.name, i)]) for i, m in enumerate(models[s.name])]
            cells += [_mean(r[k] for r in rows) for k in ("coverage", "coverage_unsure", "size", "size_unsure")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| model | recipe | training precision | held-out photos (validation + out-of-fold) | test photos "
              "| test accuracy | training s | out-of-fold refits s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in chosen:
        for m in models[s.name]:
            acc = float((m.test_logits.argmax(1) == m.test_targets).mean())
            lines.append(f"| {m.name} | {m.recipe} | {m.precision} | {int(m.held_val.sum())} + {int((~m.held_val).sum())} | "
                         f"{len(m.test_targets)} | {acc:.3f} | {m.seconds:.0f} | {m.fold_seconds:.0f} |")  # fmt: skip
    return "\n".join(lines)
