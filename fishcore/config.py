"""Typed, frozen configuration for each part of the pipeline; written next to every trained model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


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


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's augmentation: scaling, rotation, shear, translation, reflection (+ optional colour)."""

    scale: tuple[float, float] = (0.9, 1.1)
    rotation: float = 20.0  # degrees, drawn from [-rotation, +rotation]
    shear: float = 10.0  # degrees, x and y, drawn from [-shear, +shear]
    translate: float = 0.1  # fraction of width/height
    hflip: bool = True
    vflip: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Backbone, how much of it is frozen, and the residual head."""

    backbone: str = "mobilenet_v2"
    pretrained: bool = True
    # Index of the first trainable backbone stage; None means the backbone's default.
    freeze_until: int | None = None
    # False: frozen stages keep ImageNet BatchNorm statistics (eval mode). True: they adapt.
    train_frozen_bn: bool = False
    head_width: int = 128
    dropout: float = 0.2
    image_size: int = 224


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults follow the paper (Adam, lr 3e-4, validate every 10 steps)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    val_every: int = 10  # iterations; validation also runs at each epoch end
    patience: int = 6  # validations without a lower validation loss before stopping
    seed: int = 0
    calibrate: bool = True  # fit a softmax temperature on the validation split
    # "fast": frozen-trunk features computed once per view and cached (K augmented views per photo);
    # "full": augmentation recomputed on the fly every epoch, the whole network run each step.
    mode: str = "fast"
    views: int = 2  # K augmented views per training photo in fast mode (plus the clean one)
    # "auto": bfloat16 mixed precision where the hardware has it (AMX/AVX512-BF16 CPUs, recent GPUs), else
    # float32. Only the training steps and validation use it; saved weights, calibration, test metrics and
    # prediction stay float32.
    precision: str = "auto"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


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
