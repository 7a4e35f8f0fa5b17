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

T = TypeVar("T")

MODES = ("auto", "instant", "fast", "full")
PRECISIONS = ("auto", "bf16", "fp32")
LR_SCHEDULES = ("constant", "plateau")
HEADS = ("residual", "linear")
# What `evaluate --split` can score: every photo of a folder, or one of the splits saved with a model.
SPLITS = ("all", "train", "val", "test")


# --- one setting: its meaning, limits and choices, for the check, the CLI flag and the Train page ----------


@dataclass(frozen=True)
class Rule:
    """What one setting of a config may be and what it means: the config checks values against it, the CLI's
    `train` flags and the Train page's advanced widgets are generated from it (as Hugging Face keeps a field's
    help in its metadata)."""

    help: str
    kind: type = float  # int, float, bool or str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is allowed (and means what `help` says)
    label: str = ""  # the Train page's label; "" keeps it off the page
    step: float | None = None  # the Train page's step
    off_flag: str = ""  # a flag that turns an on-by-default setting off (--from-scratch)


def setting(default: Any, rule: Rule) -> Any:
    """A config field with its Rule."""
    return field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class Setting:
    """A setting as the CLI and the Train page see it: its name, its config's default and its Rule."""

    name: str
    default: Any
    rule: Rule
    config: type


def settings_of(*configs: type) -> dict[str, Setting]:
    """Every setting of these configs by name, in order; a name in two configs (seed) once, from the first."""
    out: dict[str, Setting] = {}
    for cls in configs:
        defaults = cls()
        for f in dataclasses.fields(cls):
            if "rule" in f.metadata and f.name not in out:
                out[f.name] = Setting(f.name, getattr(defaults, f.name), f.metadata["rule"], cls)
    return out


def check_setting(name: str, value: Any, rule: Rule) -> None:
    """Raise ConfigError unless value is what rule allows."""
    if value is None and rule.optional:
        return
    if rule.kind is bool:
        check_bool(name, value)
    elif rule.choices:
        check_choice(name, value, rule.choices)
    elif rule.kind is int:
        check_int(name, value, int(rule.lo if rule.lo is not None else -(2**63)), None if rule.hi is None else int(rule.hi))
    elif rule.kind is float:
        check_number(name, value, -math.inf if rule.lo is None else rule.lo, math.inf if rule.hi is None else rule.hi,
                     rule.lo_open, rule.hi_open)  # fmt: skip
    elif not isinstance(value, str):
        raise ConfigError(name, value, "must be text")


def check_settings(cfg: Any) -> None:
    """Check every field of a config that has a Rule."""
    for f in dataclasses.fields(cfg):
        if "rule" in f.metadata:
            check_setting(f.name, getattr(cfg, f.name), f.metadata["rule"])


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


# --- the configs -----------------------------------------------------------------------------

# Two photos whose 64-bit perceptual hashes differ in at most this many bits are near-copies (flipped or
# rotated copies, frames of one fish): the split, dataset health, the review queue and My photos all use it
# through fishcore.data.nearcopy; DataConfig.duplicate_distance changes it for one split.
NEAR_COPY_BITS = 6


@dataclass(frozen=True)
class DataConfig:
    """How a dataset folder is read and split."""

    val_fraction: float = setting(0.15, Rule("share of the photos held out for validation", float, 0, 1, hi_open=True))
    test_fraction: float = setting(0.15, Rule("share of the photos held out for the final test", float, 0, 1, hi_open=True))
    seed: int = setting(0, Rule("seed of the split and of training", int, 0, 2**32 - 1, label="Seed"))
    group_near_duplicates: bool = setting(True, Rule(
        "keep near-copies on one side of the split (flipped or rotated copies, by perceptual hash)", bool,
        off_flag="--no-group-duplicates"))  # fmt: skip
    duplicate_distance: int = setting(NEAR_COPY_BITS, Rule(
        "bits of 64 in which two photos' perceptual hashes may differ and still count as near-copies", int, 0, 64))
    group_pattern: str | None = setting(None, Rule(
        r"regex on file names; files whose names give the same first (group) stay on one side of the split, e.g. "
        r"'fish_(\d+)_' for video tracks (default: none)", str, optional=True))  # fmt: skip
    test_dir: str | None = setting(None, Rule(
        "a separate folder used as the whole test split (default: one carved out of DATA)", str, optional=True))
    min_side: int = setting(16, Rule("photos smaller than this many pixels on a side are unusable", int, 1, 4096))

    def __post_init__(self) -> None:
        check_settings(self)
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                "test_fraction", self.test_fraction, f"with val_fraction {self.val_fraction} leaves nothing to train on"
            )
        if self.group_pattern:
            try:
                compiled = re.compile(self.group_pattern)
            except re.error as exc:
                raise ConfigError("group_pattern", self.group_pattern, f"is not a valid regular expression ({exc})") from None
            if compiled.groups < 1:
                raise ConfigError("group_pattern", self.group_pattern, "needs a (group) that names what belongs together")


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
class TrainConfig:
    """Optimisation settings; defaults follow the paper (Adam, lr 3e-4, validate every 10 steps)."""

    epochs: int = setting(3, Rule(
        "epochs of the fast and full modes; automatic mode trains until the validation photos stop improving",
        int, 1, 10_000, label="Epochs"))  # fmt: skip
    batch_size: int = setting(32, Rule("photos per optimiser step", int, 1, 4096, label="Batch size"))
    lr: float = setting(3e-4, Rule("Adam's learning rate", float, 0, 10, lo_open=True, label="Learning rate", step=1e-4))
    weight_decay: float = setting(0.0, Rule("Adam's L2 penalty on the trained weights", float, 0, 1, label="Weight decay",
                                            step=1e-4))  # fmt: skip
    lr_schedule: str = setting("constant", Rule(
        "plateau: halve the learning rate after 2 validations without a lower loss; constant: the paper's",
        str, choices=LR_SCHEDULES, label="Learning-rate schedule"))  # fmt: skip
    label_smoothing: float = setting(0.0, Rule(
        "cross-entropy label smoothing of the training loss (0: none)", float, 0, 1, hi_open=True, label="Label smoothing",
        step=0.05))  # fmt: skip
    # Weight each class's loss by n / (classes x n_class), so rare species count as much as common ones (instant
    # mode: a balanced logistic regression). On by default: `bench --recipes` on 3 EGU video splits raised validation
    # macro-F1 from 0.489 to 0.571 (test 0.507 vs 0.504, F4K unchanged on validation); balanced sets are unaffected.
    class_weights: bool = setting(True, Rule(
        "weigh each species' loss by how rare it is in the training photos, so rare species count as much", bool,
        label="Balance rare species"))  # fmt: skip
    val_every: int = setting(10, Rule("validate every N iterations (0: only at each epoch's end)", int, 0, 1_000_000,
                                      label="Validate every N iterations"))  # fmt: skip
    patience: int = setting(6, Rule("validations without a lower validation loss before training stops", int, 1, 1_000_000,
                                    label="Early-stopping patience"))  # fmt: skip
    seed: int = setting(0, Rule("seed of the split and of training", int, 0, 2**32 - 1))
    calibrate: bool = setting(True, Rule("fit a confidence temperature on the held-out predictions", bool,
                                         off_flag="--no-calibrate"))  # fmt: skip
    # Out-of-fold refits over the training photos (fishcore.training.heldout): 0 or 2-20.
    held_out_folds: int = setting(5, Rule(
        "out-of-fold refits over the training photos (instant and fast modes) that back the confidence threshold and "
        "prediction sets with more held-out photos; 0: the validation photos alone", int, 0, 20))  # fmt: skip
    mode: str = setting("auto", Rule(
        "auto: instant, then fast mode from a deeper stage, compared on the validation photos within the time budget. "
        "instant: logistic regression on the cached features of the whole frozen backbone (seconds). "
        "fast: cache the frozen layers' output for the clean + K augmented views of each photo and train the "
        "rest on it. full: augment on the fly every epoch (the paper's way)", str, choices=MODES, label="Mode"))  # fmt: skip
    views: int = setting(2, Rule("augmented views per training photo (instant and fast modes), besides the photo itself",
                                 int, 0, 64, label="Augmented views per photo (instant and fast modes)"))  # fmt: skip
    # FISHCORE_PRECISION changes what "auto" means. Only the training steps and validation use it.
    precision: str = setting("auto", Rule(
        "arithmetic of the training steps: auto = bfloat16 mixed precision where the processor does it in hardware "
        "(about twice as fast, same accuracy in our tests), else float32; the saved model and predictions are "
        "always float32", str, choices=PRECISIONS, label="Precision"))  # fmt: skip
    budget: float = setting(180.0, Rule(
        "seconds automatic mode may spend comparing ways of training on the validation photos (a ceiling, not a target)",
        float, 10, 86_400))  # fmt: skip
    stronger_backbone: bool = setting(True, Rule(
        "automatic mode also tries the stronger backbone (EfficientNet-Lite2 at 260 px, frozen, for MobileNetV2) "
        "when its features fit in half the budget left; it is kept only if it wins on the validation photos",
        bool, label="Also try the stronger backbone (automatic mode)"))  # fmt: skip
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.held_out_folds == 1:
            raise ConfigError("held_out_folds", self.held_out_folds, "must be 0 (none) or from 2 to 20")
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError("augment", self.augment, "must be an AugmentConfig")


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
