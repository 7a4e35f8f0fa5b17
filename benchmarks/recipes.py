"""`./run.sh bench --recipes [ROOT]`: which training-recipe settings raise validation scores across datasets.

Auto mode's fine-tuning candidate (fast mode from the default freeze point, trained until validation
stops improving or its time share runs out) is run on the same seeded, honest splits as
benchmarks/accuracy.py with one setting changed at a time: class weights, label smoothing, a plateau
learning-rate schedule, weight decay, a wider residual head, and all of the helpful ones together.
The frozen features are cached once per split and shared by every variant; each variant gets the same
seconds of training, counted after its features are ready, so a cold cache favours no variant.

A recipe is kept when it raises *validation* macro-F1 on average over every set and split; the test
column is printed so the decision can be checked, not made, with it. Rows that ride on the base fit without
training of their own: flip averaging, and instant mode (MobileNetV2, EfficientNet-Lite0) alone and with
its probabilities averaged with the base model's. LSFD is left out by default:
auto mode stops at instant mode there and never reaches this candidate. Nothing here asserts.
"""

from __future__ import annotations

import shlex
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.accuracy import SETS, BenchSet
from benchmarks.common import measured_on, variants_table

# One change at a time against the base (auto mode's fast candidate with today's defaults: class weights and colour jitter on).
VARIANTS: dict[str, dict] = {
    "base": {},
    "no class weights": {"train": {"class_weights": False}},
    "label smoothing 0.1": {"train": {"label_smoothing": 0.1}},
    "plateau schedule": {"train": {"lr_schedule": "plateau"}},
    "weight decay 1e-4": {"train": {"weight_decay": 1e-4}},
    "head width 256": {"model": {"head_width": 256}},
    # Colour jitter (0.2 / 0.2 / 0.2 / 0.02) became a default after the second round; this is the paper's augmentation.
    "no colour jitter": {"train": {"augment": {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0}}},
    # Hue is the costly part of colour jitter (about 7 of 8.5 ms per 224 px view on one core).
    "no hue jitter": {"train": {"augment": {"hue": 0.0}}},
    "stages 12+": {"model": {"freeze_until": 12}},
    "4 views": {"train": {"views": 4}},
    # Validating at epoch ends only leaves more of a budget-bound run for training steps.
    "validate per epoch": {"train": {"val_every": 0, "patience": 3}},
    # Fine-tuning deeper than auto mode's stage 10 (fourth round; mixup and a moving average of the weights, on the
    # branch exp/mixup-ema, and draws balanced by video, on exp/balanced-draws, lost on EGU validation).
    "stages 7+": {"model": {"freeze_until": 7}},
}
# Evaluation-only variant: the base model's predictions averaged with those of the mirrored photo. It rides on
# the base fit (no training of its own) and is compared with the base scored the same way, from the photo files.
FLIP = "base + flip averaging"
# Evaluation-only rows riding on the base fit: instant mode (logistic regression on a whole frozen backbone's
# pooled features, clean views, as auto mode's quick check) alone, and its probabilities averaged with the base
# model's. Instant mode is already trained in every auto run; averaging would cost a second head (and, for
# another backbone, a second network) at prediction time.
ENSEMBLES = {"mobilenet_v2": "MobileNetV2", "efficientnet_lite0": "EfficientNet-Lite0"}


def ensemble_rows(label: str) -> tuple[str, str]:
    """The table's rows for instant mode on one backbone of ENSEMBLES: alone, and averaged with the base fit."""
    return f"instant, {label}", f"base + instant {label}, probabilities averaged"


def _ensemble_scores(fitted, wall, data, model_cfg, train_cfg, cache_root: Path) -> dict[str, tuple[float, float, float]]:
    """(val F1, test F1, seconds) of instant mode per backbone of ENSEMBLES, alone and averaged with the base fit."""
    import torch
    from sklearn.metrics import f1_score

    from fishcore.training.run import RunOptions, TrainingRun
    from fishcore.training.strategies import fit_instant

    base = {"val": fitted.val_logits(), "test": fitted.test_logits()}
    out = {}
    for backbone, label in ENSEMBLES.items():
        cfg = replace(model_cfg, backbone=backbone, freeze_until=None)
        options = RunOptions(device="cpu", cache_dir=str(cache_root))
        run = TrainingRun(model=cfg, train=replace(train_cfg, views=0), options=options)
        run.generator = torch.Generator()
        began = time.monotonic()
        instant = fit_instant(run, data)
        seconds = time.monotonic() - began
        other = {"val": instant.val_logits(), "test": instant.test_logits()}
        alone, averaged = [], []
        for split in ("val", "test"):
            (a, targets), (b, _) = base[split], other[split]
            alone.append(float(f1_score(targets, b.argmax(1), average="macro")))
            mixed = a.float().softmax(1) + b.float().softmax(1)
            averaged.append(float(f1_score(targets, mixed.argmax(1), average="macro")))
        alone_row, averaged_row = ensemble_rows(label)
        out[alone_row] = (*alone, seconds)
        out[averaged_row] = (*averaged, wall + seconds)
    return out


# The seconds the fast candidate gets in auto mode with the default 180 s budget (after instant mode).
CANDIDATE_SECONDS = 150.0


def _flip_scores(fitted, data) -> dict[str, float]:
    """Macro-F1 on val and test from the photo files: plain, and with the mirrored photo's probabilities averaged in."""
    import torch
    from sklearn.metrics import f1_score

    from fishcore.data.augment import build_transforms
    from fishcore.data.images import load_image_file

    model, size = fitted.model.eval(), fitted.model_cfg.image_size
    transform = build_transforms(None, False, size)
    out = {}
    for split, samples in (("val", data.val), ("test", data.test)):
        plain, flipped, targets = [], [], []
        for start in range(0, len(samples), 32):
            chunk = samples[start : start + 32]
            x = torch.stack([transform(load_image_file(path, min_size=size)) for path, _ in chunk])
            with torch.inference_mode():
                probs = model(x).softmax(1)
                plain.append(probs.argmax(1))
                flipped.append((probs + model(x.flip(3)).softmax(1)).argmax(1))
            targets += [t for _, t in chunk]
        out[f"{split} plain"] = float(f1_score(targets, torch.cat(plain).numpy(), average="macro"))
        out[f"{split} flip"] = float(f1_score(targets, torch.cat(flipped).numpy(), average="macro"))
    return out


def _fit_variant(data, model_cfg, train_cfg, cache_root: Path, seconds: float, flip: bool = False):
    """Train auto mode's fast candidate with these configs: (the fit, val F1, test F1, seconds, flip scores or None)."""
    from sklearn.metrics import f1_score

    from fishcore.runtime import seed_everything
    from fishcore.training.run import RunOptions, TimeLimit, TrainingRun
    from fishcore.training.strategies import fit_fast, validation_scores

    generator = seed_everything(train_cfg.seed)
    began = time.monotonic()
    # The seconds count from the end of feature extraction, so the variant that fills a cold cache first gets as
    # much training as the ones after it (with a deadline from `began` it lost that time: a CI failure).
    options = RunOptions(device="cpu", cache_dir=str(cache_root))
    run = TrainingRun(model=model_cfg, train=train_cfg, options=options, limits=(TimeLimit(seconds, from_training=True),))
    run.generator = generator
    fitted = fit_fast(run, data)
    wall = time.monotonic() - began
    val_f1, _ = validation_scores(fitted)
    logits, targets = fitted.test_logits()
    test_f1 = float(f1_score(targets.numpy(), logits.argmax(1).numpy(), average="macro"))
    return fitted, val_f1, test_f1, wall, (_flip_scores(fitted, data) if flip else None)


def run_recipes(
    root: str,
    sets: tuple[BenchSet, ...] | None = None,
    variants: dict[str, dict] | None = None,
    only: list[str] | None = None,
    set_names: list[str] | None = None,
    seconds: float = CANDIDATE_SECONDS,
    flip_too: bool = True,
    ensembles_too: bool = True,
    log=print,
) -> str:
    """Every variant on every split of every set present; returns the Markdown table (means over splits)."""
    from fishcore.config import DataConfig, TrainConfig
    from fishcore.models.config import ModelConfig
    from fishcore.settings import Paths
    from fishcore.training.pipeline import prepare_data
    from fishcore.training.strategies import AUTO_FREEZE_POINTS, AUTO_MAX_EPOCHS

    root_path = Path(root).expanduser().resolve()
    sets = sets if sets is not None else tuple(s for s in SETS if s.name != "lsfd")
    if set_names:
        sets = tuple(s for s in SETS if s.name in set_names)
    variants = variants or VARIANTS
    if only:
        missing = sorted(set(only) - set(variants))
        if missing:
            raise FileNotFoundError(f"no recipe variant named {', '.join(missing)}; known: {', '.join(variants)}")
        variants = {name: variants[name] for name in only}
    present = [s for s in sets if (root_path / s.name).is_dir()]
    if not present:
        raise FileNotFoundError(f"none of {', '.join(s.name for s in sets)} is in {root_path}")
    cache_root = Paths.from_env().cache / "bench-recipes"  # warm on a second run: only training is timed then
    base_model = ModelConfig(freeze_until=AUTO_FREEZE_POINTS["mobilenet_v2"][0])
    scores: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for bench_set in present:
        for seed in bench_set.seeds:
            data_cfg = DataConfig(group_pattern=bench_set.group_pattern, seed=seed)
            _, _, data = prepare_data(root_path / bench_set.name, data_cfg, cache_root, lambda *a: None)
            base_train = TrainConfig(mode="fast", epochs=AUTO_MAX_EPOCHS, seed=seed)
            for name, change in variants.items():
                model_cfg = replace(base_model, **change.get("model", {}))
                train_change = dict(change.get("train", {}))
                if "augment" in train_change:
                    train_change["augment"] = replace(base_train.augment, **train_change["augment"])
                train_cfg = replace(base_train, **train_change)
                flip = name == "base" and flip_too
                fitted, val_f1, test_f1, wall, flips = _fit_variant(data, model_cfg, train_cfg, cache_root, seconds, flip)
                scores.setdefault((bench_set.name, name), []).append((val_f1, test_f1, wall))
                log(f"{bench_set.name} split {seed} {name}: val {val_f1:.3f} test {test_f1:.3f} ({wall:.0f} s)")
                if flips:
                    # Both rows from the photo files, so the difference is the mirroring alone.
                    scores.setdefault((bench_set.name, "base, scored from the files"), []).append(
                        (flips["val plain"], flips["test plain"], wall)
                    )
                    scores.setdefault((bench_set.name, FLIP), []).append((flips["val flip"], flips["test flip"], wall))
                    log(f"{bench_set.name} split {seed} {FLIP}: {flips}")
                if name == "base" and ensembles_too:
                    for row, (v, t, s) in _ensemble_scores(fitted, wall, data, model_cfg, train_cfg, cache_root).items():
                        scores.setdefault((bench_set.name, row), []).append((v, t, s))
                        log(f"{bench_set.name} split {seed} {row}: val {v:.3f} test {t:.3f}")

    def mean(values) -> float:
        return statistics.mean(values)

    names = [s.name for s in present]
    table_rows = [*variants, *(["base, scored from the files", FLIP] if flip_too and "base" in variants else [])]
    if ensembles_too and "base" in variants:
        table_rows += [row for label in ENSEMBLES.values() for row in ensemble_rows(label)]
    lines = [
        measured_on(f"; data {root_path}; "
        f"command `./run.sh bench --recipes {root} --sets {','.join(names)} --variants {shlex.quote(','.join(variants))}`. "
        "Auto mode's fast candidate (stages "
        f"{base_model.freeze_until}+ trained, {seconds:.0f} s of training after its features) with one setting changed; "
        "macro-F1 as the mean over each set's seeded splits; the last column averages validation over all sets, "
        "which is what decides."),
        "",
    ]
    lines += variants_table("recipe", table_rows, names, scores, seconds=True)
    return "\n".join(lines)
