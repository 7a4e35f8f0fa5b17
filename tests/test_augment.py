import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from fishcore.config import AUGMENT_SPEC, AugmentConfig
from fishcore.data.augment import FastRandomAffine, build_transforms, preview
from fishcore.errors import ConfigError

from conftest import class_image


def test_spec_covers_exactly_the_config_fields_with_defaults_in_range():
    assert [p.name for p in AUGMENT_SPEC] == [f.name for f in dataclasses.fields(AugmentConfig)]
    AugmentConfig()  # the defaults pass the config's own checks


def test_out_of_range_values_are_rejected_by_name():
    with pytest.raises(ConfigError, match="rotation"):
        AugmentConfig(rotation=500)
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))
    with pytest.raises(ConfigError, match="hflip"):
        AugmentConfig(hflip="yes")


def test_transforms_give_normalised_tensors_of_the_model_size():
    img = class_image(0, 1, 100)
    for train in (True, False):
        x = build_transforms(AugmentConfig(), train, image_size=64)(img)
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert -3 < float(x.mean()) < 3
    # Evaluation is deterministic; training is not.
    ev = build_transforms(AugmentConfig(), False, 64)
    assert torch.equal(ev(img), ev(img))


def test_preview_is_deterministic_per_seed_and_uses_the_training_factory():
    img = class_image(1, 2, 80)
    a = preview(img, AugmentConfig(), n=4, seed=7, image_size=80)
    b = preview(img, AugmentConfig(), n=4, seed=7, image_size=80)
    c = preview(img, AugmentConfig(), n=4, seed=8, image_size=80)
    assert [np.asarray(v.image).tobytes() for v in a] == [np.asarray(v.image).tobytes() for v in b]
    assert [np.asarray(v.image).tobytes() for v in a] != [np.asarray(v.image).tobytes() for v in c]
    assert len({np.asarray(v.image).tobytes() for v in a}) == 4
    before = torch.get_rng_state()
    preview(img, AugmentConfig(), n=2, seed=1)
    assert torch.equal(before, torch.get_rng_state())  # the caller's RNG is untouched


def test_no_augmentation_means_views_equal_the_resized_original():
    cfg = AugmentConfig(scale=(1.0, 1.0), rotation=0, shear=0, translate=0, hflip=False, vflip=False)
    cfg = dataclasses.replace(cfg, brightness=0, contrast=0, saturation=0, hue=0)  # the default colour jitter off too
    img = class_image(0, 3, 64)
    for view in preview(img, cfg, n=2, seed=0, image_size=64):
        assert np.abs(np.asarray(view.image, dtype=int) - np.asarray(img, dtype=int)).max() <= 1


def test_affine_matrix_predicts_where_a_pixel_moves():
    size = 101
    cfg = AugmentConfig(scale=(0.8, 1.2), rotation=40, shear=15, translate=0.1, hflip=False, vflip=False)
    arr = np.zeros((size, size, 3), np.uint8)
    x0, y0 = 70, 35
    arr[y0 - 1 : y0 + 2, x0 - 1 : x0 + 2] = 255
    for view in preview(Image.fromarray(arr), cfg, n=5, seed=3, image_size=size):
        out = np.asarray(view.image, dtype=float)[..., 0]
        ys, xs = np.nonzero(out > 40)
        w = out[ys, xs]
        found = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
        expected = (view.matrix @ np.array([x0 + 0.5, y0 + 0.5, 1.0]))[:2] - 0.5
        assert np.abs(found - expected).max() < 1.5, (view.params, found, expected)


def test_opencv_affine_matches_torchvision_for_the_same_draw():
    cfg = AugmentConfig()
    img = class_image(2, 5, 120).resize((96, 96))
    tensor = v2.ToImage()(img)
    fast = build_transforms(cfg, True, 96).transforms[2]
    assert isinstance(fast, FastRandomAffine)
    reference = v2.RandomAffine(
        degrees=cfg.rotation,
        translate=(cfg.translate,) * 2,
        scale=cfg.scale,
        shear=(-cfg.shear, cfg.shear) * 2,
        interpolation=v2.InterpolationMode.BILINEAR,
        fill=0,
    )
    for seed in range(5):
        torch.manual_seed(seed)
        params = reference.make_params([tensor])
        want = reference.transform(tensor, params).float()
        got = fast.transform(tensor, params)
        assert isinstance(got, tv_tensors.Image) and got.dtype == torch.uint8 and got.shape == tensor.shape
        # Same warp: away from the edge of the warped picture (where the two blend in the fill colour
        # slightly differently) pixels differ by rounding only.
        white = reference.transform(torch.full_like(tensor, 255), params).float()[:1]
        inside = -torch.nn.functional.max_pool2d(-white[None], 3, 1, 1)[0] == 255
        diff = (got.float() - want).abs() * inside
        assert int(inside.sum()) > 0.5 * 96 * 96 and float(diff.max()) <= 1
        pil = fast.transform(img, params)
        assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), got.permute(1, 2, 0).numpy())
    # Inputs OpenCV does not handle here go to torchvision unchanged.
    as_float = tensor.float() / 255
    assert torch.equal(fast.transform(as_float, params), reference.transform(as_float, params))
