"""ModelConfig: the network's settings (backbone, how much of it is frozen, the head), beside the backbones it
names, so that models/ is one layer and fishcore.config imports nothing of it."""

from __future__ import annotations

from dataclasses import dataclass

from fishcore.config import HEADS, Rule, check_int, check_settings, setting
from fishcore.models.backbones import BACKBONES


@dataclass(frozen=True)
class ModelConfig:
    """Backbone, how much of it is frozen, and the residual head."""

    backbone: str = setting("mobilenet_v2", Rule(
        "the ImageNet-pretrained network (mobilenet_v2, efficientnet_lite0 and efficientnet_lite2 work offline; Lite2 is best "
        "with an image size of 260)", str,
        choices=tuple(sorted(BACKBONES)), label="Backbone"))  # fmt: skip
    pretrained: bool = setting(True, Rule("start from ImageNet weights (random initial weights with --from-scratch)", bool,
                                          off_flag="--from-scratch"))  # fmt: skip
    freeze_until: int | None = setting(None, Rule(
        "the first backbone stage that trains; the stages before it keep their ImageNet weights (default: the backbone's "
        "own; automatic mode picks its own)", int, 0, optional=True, label="Freeze stages before"))  # fmt: skip
    train_frozen_bn: bool = setting(False, Rule("let the frozen stages' BatchNorm statistics adapt to your photos", bool))
    # "residual": the paper's extra residual block before the classifier; "linear": pooling and a linear layer.
    head: str = setting("residual", Rule("residual: the paper's extra residual block before the classifier; linear: none",
                                         str, choices=HEADS))  # fmt: skip
    head_width: int = setting(128, Rule("channels of the residual head", int, 1, 4096))
    dropout: float = setting(0.2, Rule("dropout before the classifier", float, 0, 1, hi_open=True))
    # Five stride-2 stages: below 32 px the last feature map would be empty.
    image_size: int = setting(224, Rule("photos are resized to this many pixels square", int, 32, 1024,
                                        label="Image size", step=32))  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self)
        if self.freeze_until is not None:  # its upper limit depends on the backbone
            check_int("freeze_until", self.freeze_until, 0, BACKBONES[self.backbone].num_stages)
