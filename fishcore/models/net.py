"""The paper's residual head on a backbone's stages, and freezing."""

from __future__ import annotations

import torch
from torch import nn

from fishcore.errors import ConfigError, WeightsError
from fishcore.models.backbones import get_backbone, load_pretrained_state
from fishcore.models.config import ModelConfig
from fishcore.models.quantize import round_weights


class ResidualBlock(nn.Module):
    """The paper's extra residual block: conv-BN-ReLU-conv-BN plus an identity skip, then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        # Zero-init the last BN so the block starts as the identity and cannot hurt the pretrained features.
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ResidualHead(nn.Module):
    """Feature maps -> 1x1 projection -> residual block -> global average pool -> dropout -> linear.

    The 1x1 projection to ``width`` channels keeps the 3x3 convolutions small (at 1280 channels one
    residual block alone would be 29M parameters, too big to ship).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.block = ResidualBlock(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block(self.project(x))).flatten(1)
        return self.fc(self.dropout(x))


class LinearHead(nn.Module):
    """Feature maps -> global average pool -> dropout -> linear: the plain classifier, without the paper's block.

    Instant mode fits it as a logistic regression on the pooled features of the frozen backbone.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class FishNet(nn.Module):
    """A backbone's stages followed by the residual head; stages before ``freeze_until`` are frozen."""

    def __init__(self, cfg: ModelConfig, num_classes: int, backbone_state: dict | None = None) -> None:
        super().__init__()
        spec = get_backbone(cfg.backbone)
        net = spec.builder()
        if backbone_state is not None:
            try:
                net.load_state_dict(backbone_state, strict=True)
            except RuntimeError as exc:
                raise WeightsError(f"the {cfg.backbone} weights file does not fit the architecture: {exc}") from exc
        self.backbone = nn.Sequential(*spec.stages(net))
        self.head: nn.Module = (
            ResidualHead(spec.out_channels, num_classes, cfg.head_width, cfg.dropout)
            if cfg.head == "residual"
            else LinearHead(spec.out_channels, num_classes, cfg.dropout)
        )
        self.freeze_until = 0
        self.train_frozen_bn = cfg.train_frozen_bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the frozen stages: fixed for a given input while trunk_is_constant."""
        return self.backbone[: self.freeze_until](x)

    def from_trunk(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from trunk features: the trainable stages and the head."""
        return self.head(self.backbone[self.freeze_until :](features))

    @property
    def trunk_is_constant(self) -> bool:
        """True when the frozen stages cannot change (their BatchNorm statistics are frozen too)."""
        return not self.train_frozen_bn

    def train(self, mode: bool = True) -> FishNet:
        super().train(mode)
        if mode and not self.train_frozen_bn:
            # Frozen stages keep their ImageNet BatchNorm statistics.
            for stage in self.backbone[: self.freeze_until]:
                stage.eval()
        return self


def freeze(model: FishNet, until: int, train_bn: bool = False) -> int:
    """Freeze backbone stages [0, until) and train the rest; returns the number of trainable parameters.

    ``train_bn`` chooses whether frozen stages' BatchNorm running statistics still adapt in training.
    """
    n = len(model.backbone)
    if not 0 <= until <= n:
        raise ConfigError("freeze_until", until, f"must be from 0 to {n} for this backbone")
    for i, stage in enumerate(model.backbone):
        for p in stage.parameters():
            p.requires_grad = i >= until
    for p in model.head.parameters():
        p.requires_grad = True
    model.freeze_until = until
    model.train_frozen_bn = train_bn
    model.train(model.training)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(cfg: ModelConfig, num_classes: int, load_weights: bool = True) -> tuple[FishNet, str | None]:
    """Build FishNet, load its ImageNet backbone when asked, and freeze; returns (model, weights sha256)."""
    state, digest = (None, None)
    if cfg.pretrained and load_weights:
        state, digest = load_pretrained_state(cfg.backbone)
    model = FishNet(cfg, num_classes, backbone_state=state)
    if state is not None:
        # The ImageNet weights as the phone stores them (8 bits per output channel, models/quantize.py): the frozen
        # trunk's features, cached and trained on, are then the ones every answer computes.
        round_weights(model.backbone)
    spec = get_backbone(cfg.backbone)
    until = spec.default_freeze_until if cfg.freeze_until is None else cfg.freeze_until
    freeze(model, until, cfg.train_frozen_bn)
    return model, digest
