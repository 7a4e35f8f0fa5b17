"""Typed, frozen configuration for each part of the pipeline; written next to every trained model.

Every config checks its own values when it is built (types, ranges, combinations such as a freeze
point beyond the backbone's stages) and raises ConfigError naming the setting, so no bad value gets
as far as a traceback. The CLI builds these from flags, the Train page from widgets.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fishcore.errors import ConfigError
from fishcore.models.backbones import BACKBONES

T = TypeVar("T")

MODES = ("auto", "instant", "fast", "full")
PRECISIONS = ("auto", "bf16", "fp32")
LR_SCHEDULES = ("constant", "plateau")
HEADS = ("residual", "linear")
# What `evaluate --split` can score: every photo of a folder, or one of the splits saved with a model.
SPLITS = ("all", "train", "val", "test")


# --- checks shared by the configs ------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if not _is_int(value):
        raise ConfigError(name, value, "must be a whole number")
    if value < lo or (hi is not None and value > hi):
        raise ConfigError(name, value, f"must be from {lo} to {hi}" if hi is not None else f"must be at least {lo}")


def check_number(name: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    if not _is_number(value):
        raise ConfigError(name, value, "must be a finite number")
    low_ok = value > lo if lo_open else value >= lo
    high_ok = value < hi if hi_open else value <= hi
    if not (low_ok and high_ok):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ConfigError(name, value, f"must be in {interval}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(name, value, "must be true or false")


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(name, value, f"must be one of: {', '.join(choices)}")


def check_optional_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(name, value, "must be text")


# --- the configs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """How a dataset folder is read and split."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    # Keep near-duplicate photos (flipped/rotated copies, perceptual hash) in the same split.
    group_near_duplicates: bool = True
    # Max Hamming distance between 64-bit perceptual hashes that counts as "the same photo".
    duplicate_distance: int = 6
    # Optional regex; files whose names give the same first group stay together (e.g. video tracks).
    group_pattern: str | None = None
    # A separate folder used as the whole test split instead of carving one out of the data.
    test_dir: str | None = None
    min_side: int = 16

    def __post_init__(self) -> None:
        check_number("val_fraction", self.val_fraction, 0, 1, hi_open=True)
        check_number("test_fraction", self.test_fraction, 0, 1, hi_open=True)
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                "test_fraction", self.test_fraction, f"with val_fraction {self.val_fraction} leaves nothing to train on"
            )
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_bool("group_near_duplicates", self.group_near_duplicates)
        check_int("duplicate_distance", self.duplicate_distance, 0, 64)
        check_optional_str("group_pattern", self.group_pattern)
        if self.group_pattern:
            try:
                compiled = re.compile(self.group_pattern)
            except re.error as exc:
                raise ConfigError("group_pattern", self.group_pattern, f"is not a valid regular expression ({exc})") from None
            if compiled.groups < 1:
                raise ConfigError("group_pattern", self.group_pattern, "needs a (group) that names what belongs together")
        check_optional_str("test_dir", self.test_dir)
        check_int("min_side", self.min_side, 1, 4096)


@dataclass(frozen=True)
class AugmentParam:
    """One user-facing knob of AugmentConfig: UIs generate their controls from this list."""

    name: str
    label: str
    kind: str  # "range" (min, max), "float" or "bool"
    minimum: float = 0.0
    maximum: float = 1.0
    step: float = 0.01
    help: str = ""


AUGMENT_SPEC: tuple[AugmentParam, ...] = (
    AugmentParam("scale", "Scaling", "range", 0.5, 1.5, 0.05, "Zoom factor drawn uniformly from this range."),
    AugmentParam("rotation", "Rotation (degrees)", "float", 0, 180, 1, "Angle drawn from [-value, +value]."),
    AugmentParam("shear", "Shear (degrees)", "float", 0, 45, 1, "Shear angle in x and y, drawn from [-value, +value]."),
    AugmentParam("translate", "Translation (fraction)", "float", 0, 0.5, 0.01, "Shift by up to this fraction of the size."),
    AugmentParam("hflip", "Horizontal reflection", "bool", help="Mirror left-right with probability 0.5."),
    AugmentParam("vflip", "Vertical reflection", "bool", help="Mirror top-bottom with probability 0.5."),
    AugmentParam("brightness", "Brightness jitter", "float", 0, 1, 0.05, "Colour jitter (0: off, as in the paper)."),
    AugmentParam("contrast", "Contrast jitter", "float", 0, 1, 0.05, "Colour jitter (0: off, as in the paper)."),
    AugmentParam("saturation", "Saturation jitter", "float", 0, 1, 0.05, "Colour jitter (0: off, as in the paper)."),
    AugmentParam("hue", "Hue jitter", "float", 0, 0.5, 0.01, "Colour jitter (0: off, as in the paper)."),
)


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentation (scaling, rotation, shear, translation, reflection) plus mild colour jitter.

    The paper used no colour jitter (PAPER_AUGMENT). It is on by default because it raised validation
    macro-F1 on each of three video splits of EGU (underwater light: 0.571 -> 0.612 on average, test
    0.504 -> 0.540) for one F4K validation photo (0.989 -> 0.979): `./run.sh bench --recipes`, README.
    """

    scale: tuple[float, float] = (0.9, 1.1)
    rotation: float = 20.0  # degrees, drawn from [-rotation, +rotation]
    shear: float = 10.0  # degrees, x and y, drawn from [-shear, +shear]
    translate: float = 0.1  # fraction of width/height
    hflip: bool = True
    vflip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def __post_init__(self) -> None:
        for p in AUGMENT_SPEC:
            value = getattr(self, p.name)
            if p.kind == "bool":
                check_bool(p.name, value)
            elif p.kind == "range":
                if not isinstance(value, (tuple, list)) or len(value) != 2:
                    raise ConfigError(p.name, value, "must be two numbers: min and max")
                for v in value:
                    check_number(p.name, v, p.minimum, p.maximum)
                if value[0] > value[1]:
                    raise ConfigError(p.name, value, "min is greater than max")
                object.__setattr__(self, p.name, tuple(value))
            else:
                check_number(p.name, value, p.minimum, p.maximum)


# Exactly the paper's augmentation: no colour jitter.
PAPER_AUGMENT = AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


assert {p.name for p in AUGMENT_SPEC} == {f.name for f in dataclasses.fields(AugmentConfig)}


@dataclass(frozen=True)
class ModelConfig:
    """Backbone, how much of it is frozen, and the residual head."""

    backbone: str = "mobilenet_v2"
    pretrained: bool = True
    # Index of the first trainable backbone stage; None means the backbone's default.
    freeze_until: int | None = None
    # False: frozen stages keep ImageNet BatchNorm statistics (eval mode). True: they adapt.
    train_frozen_bn: bool = False
    # "residual": the paper's extra residual block before the classifier; "linear": pooling and a linear layer.
    head: str = "residual"
    head_width: int = 128
    dropout: float = 0.2
    image_size: int = 224

    def __post_init__(self) -> None:
        check_choice("backbone", self.backbone, sorted(BACKBONES))
        check_bool("pretrained", self.pretrained)
        if self.freeze_until is not None:
            stages = BACKBONES[self.backbone].num_stages
            check_int("freeze_until", self.freeze_until, 0, stages)
        check_bool("train_frozen_bn", self.train_frozen_bn)
        check_choice("head", self.head, HEADS)
        check_int("head_width", self.head_width, 1, 4096)
        check_number("dropout", self.dropout, 0, 1, hi_open=True)
        # Five stride-2 stages: below 32 px the last feature map would be empty.
        check_int("image_size", self.image_size, 32, 1024)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults follow the paper (Adam, lr 3e-4, validate every 10 steps)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    # "plateau": the learning rate halves after 2 validations without a lower loss; "constant": the paper's.
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0  # cross-entropy target smoothing (training loss only)
    # Weight each class's loss by n / (classes x n_class), so rare species count as much as common ones (instant
    # mode: a balanced logistic regression). On by default: `bench --recipes` on 3 EGU video splits raised validation
    # macro-F1 from 0.489 to 0.571 (test 0.507 vs 0.504, F4K unchanged on validation); balanced sets are unaffected.
    class_weights: bool = True
    val_every: int = 10  # iterations; validation also runs at each epoch end
    patience: int = 6  # validations without a lower validation loss before stopping
    seed: int = 0
    calibrate: bool = True  # fit a softmax temperature on the held-out predictions
    # Out-of-fold refits over the training photos (instant and fast modes) that add held-out predictions for
    # the confidence threshold and prediction sets (fishcore.training.heldout); 0: the validation split alone.
    held_out_folds: int = 5
    # "auto": instant, then fast mode at a few freeze points, compared on validation within `budget`;
    # "instant": logistic regression on the cached features of the whole frozen backbone (seconds);
    # "fast": frozen-trunk features computed once per view and cached (K augmented views per photo);
    # "full": augmentation recomputed on the fly every epoch, the whole network run each step.
    mode: str = "auto"
    views: int = 2  # K augmented views per training photo in fast mode (plus the clean one)
    # "auto": bfloat16 mixed precision where the hardware has it (AMX/AVX512-BF16 CPUs, recent GPUs), else
    # float32 (FISHCORE_PRECISION changes what auto means). Only the training steps and validation use it;
    # saved weights, calibration, test metrics and prediction stay float32.
    precision: str = "auto"
    budget: float = 180.0  # seconds auto mode may spend looking for the best recipe (a ceiling, not a target)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, 10_000)
        check_int("batch_size", self.batch_size, 1, 4096)
        check_number("lr", self.lr, 0, 10, lo_open=True)
        check_number("weight_decay", self.weight_decay, 0, 1)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_number("label_smoothing", self.label_smoothing, 0, 1, hi_open=True)
        check_bool("class_weights", self.class_weights)
        check_int("val_every", self.val_every, 0, 1_000_000)
        check_int("patience", self.patience, 1, 1_000_000)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_bool("calibrate", self.calibrate)
        if self.held_out_folds != 0:
            check_int("held_out_folds", self.held_out_folds, 2, 20)
        check_choice("mode", self.mode, MODES)
        check_int("views", self.views, 0, 64)
        check_choice("precision", self.precision, PRECISIONS)
        check_number("budget", self.budget, 10, 86_400)
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError("augment", self.augment, "must be an AugmentConfig")


# What each setting of DataConfig, ModelConfig and TrainConfig means, for the flags and forms generated from
# them (the CLI's `train` flags). A setting in two configs (seed) is one flag that sets both.
SETTING_HELP: dict[str, str] = {
    "val_fraction": "share of the photos held out for validation",
    "test_fraction": "share of the photos held out for the final test",
    "seed": "seed of the split and of training",
    "group_near_duplicates": "keep near-duplicate photos (flipped or rotated copies) on one side of the split",
    "duplicate_distance": "Hamming distance of perceptual hashes that counts as the same photo",
    "group_pattern": r"regex on file names; same first group = same split (e.g. 'fish_(\d+)_')",
    "test_dir": "separate folder to use as the whole test split",
    "min_side": "photos smaller than this many pixels on a side are unusable",
    "backbone": "the ImageNet-pretrained network",
    "pretrained": "ImageNet weights (off: random initial weights)",
    "freeze_until": "first trainable backbone stage (default: per backbone; auto mode picks its own)",
    "train_frozen_bn": "let frozen stages' BatchNorm statistics adapt",
    "head": "residual: the paper's extra residual block; linear: none",
    "head_width": "channels of the residual head",
    "dropout": "dropout before the classifier",
    "image_size": "photos are resized to this many pixels square",
    "epochs": "epochs of fast and full modes; auto mode trains until validation stops improving",
    "batch_size": "photos per optimiser step",
    "lr": "Adam's learning rate",
    "weight_decay": "Adam's L2 penalty on the trained weights",
    "lr_schedule": "plateau: halve the learning rate after 2 validations without a lower loss; constant: the paper's",
    "label_smoothing": "cross-entropy label smoothing (0-1)",
    "class_weights": "weigh each species' loss by how rare it is in the training split, so rare species count as much",
    "val_every": "validate every N iterations (0: only at epoch end)",
    "patience": "validations without improvement before stopping",
    "calibrate": "fit a confidence temperature on the held-out predictions",
    "held_out_folds": "out-of-fold refits over the training photos (instant, fast) that back the confidence "
    "threshold and prediction sets with more held-out photos; 0: the validation split alone",
    "mode": "auto: instant, then fast mode from a deeper stage, compared on validation within --budget. "
    "instant: logistic regression on the cached features of the whole frozen backbone (seconds). "
    "fast: cache the frozen layers' output for the clean + K augmented views of each photo and train the "
    "rest on it. full: augment on the fly every epoch (the paper's way)",
    "views": "K augmented views per training photo (instant, fast)",
    "precision": "arithmetic of the training steps: auto = bfloat16 mixed precision where the CPU/GPU has it in "
    "hardware, else float32; the saved model and prediction are float32",
    "budget": "seconds auto mode may spend comparing recipes on the validation split (a ceiling, not a target)",
}
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "backbone": tuple(sorted(BACKBONES)),
    "head": HEADS,
    "lr_schedule": LR_SCHEDULES,
    "mode": MODES,
    "precision": PRECISIONS,
}


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build a config from a dict, ignoring unknown keys and restoring nested configs and tuples."""
    data = data or {}
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
