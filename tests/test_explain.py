"""Grad-CAM (fishcore/inference/explain.py): the map's shape and range, and that it finds the fish in real photos."""

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fishcore.errors import ConfigError
from fishcore.inference.explain import explain, grad_cam, overlay
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.models.net import build_model
from fishcore.store.model_files import bundled_model_dir, read_card

from conftest import LSFD, class_image, require_shared
from test_cli import _cli_here, run_cli


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(bundled_model_dir())


def test_grad_cam_is_a_map_over_the_input_from_0_to_1_and_follows_the_class():
    torch.manual_seed(0)
    model, _ = build_model(ModelConfig(pretrained=False, image_size=64), 3, load_weights=False)
    x = torch.randn(1, 3, 64, 96)
    heat, logits = grad_cam(model, x)
    assert heat.shape == (64, 96) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1
    assert logits.shape == (1, 3)
    others = [grad_cam(model, x, c)[0] for c in range(3)]
    assert any(not np.allclose(others[0], o) for o in others[1:])  # a different class, a different map
    with pytest.raises(ValueError):
        grad_cam(model, x, 3)
    with pytest.raises(ValueError):
        grad_cam(model, torch.randn(2, 3, 64, 64))


def test_explain_maps_the_photo_at_its_own_size_and_overlay_blends(predictor):
    image = class_image(1, 0, size=48).resize((120, 80))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    result = explain(predictor, buf.getvalue())
    assert result.heat.shape == (80, 120) and result.label in predictor.classes
    assert 0 <= result.probability <= 1
    other = next(c for c in predictor.classes if c != result.label)
    assert explain(predictor, buf.getvalue(), other).label == other
    with pytest.raises(ConfigError):
        explain(predictor, buf.getvalue(), "Unicorn")
    plain = np.asarray(overlay(result.image, result.heat, 0.0))
    assert np.array_equal(plain, np.asarray(result.image.convert("RGB")))
    assert not np.array_equal(np.asarray(overlay(result.image, result.heat, 1.0)), plain)
    with pytest.raises(ConfigError):
        overlay(result.image, result.heat, 1.5)


def fish_mask(image: Image.Image) -> np.ndarray:
    """Pixels unlike the photo's border colour (Otsu threshold on the Lab distance), black corners excluded."""
    rgb = np.asarray(image.convert("RGB"))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate(
        [lab[:8].reshape(-1, 3), lab[-8:].reshape(-1, 3), lab[:, :8].reshape(-1, 3), lab[:, -8:].reshape(-1, 3)]
    )
    distance = np.uint8(np.clip(np.linalg.norm(lab - np.median(border, 0), axis=2), 0, 255))
    _, mask = cv2.threshold(distance, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return mask.astype(bool) & (rgb.max(2) > 20)


def test_grad_cam_puts_more_heat_on_the_fish_than_on_the_background(predictor):
    """Real LSFD test photos the bundled model never trained on, four per species: the evidence is on the fish."""
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    picks: dict[str, list[str]] = {}
    for rel in card.split["test"]:
        picks.setdefault(rel.split("/")[0], [])
        if len(picks[rel.split("/")[0]]) < 4:
            picks[rel.split("/")[0]].append(rel)
    inside, outside = [], []
    for rels in picks.values():
        for rel in rels:
            result = explain(predictor, str(root / rel))
            mask = fish_mask(result.image)
            assert 0.05 < mask.mean() < 0.95, rel  # the threshold found a fish and a background
            inside.append(float(result.heat[mask].mean()))
            outside.append(float(result.heat[~mask].mean()))
    inside_a, outside_a = np.array(inside), np.array(outside)
    print(f"mean heat on the fish {inside_a.mean():.3f}, on the background {outside_a.mean():.3f}, n={len(inside)}")
    assert len(inside) == 36
    assert inside_a.mean() > 1.3 * outside_a.mean()
    assert (inside_a > outside_a).mean() >= 0.8


def test_cli_explain_writes_the_overlay_and_says_which_class(tmp_path, monkeypatch, capsys):
    photo = tmp_path / "fish.png"
    class_image(0, 1, size=64).save(photo)
    out = tmp_path / "maps" / "heat.png"
    classes = read_card(bundled_model_dir()).classes
    proc = run_cli("explain", "default", photo, "--out", out, "--class", classes[2], "--opacity", "0.7")
    assert f"heat map for {classes[2]}" in proc.stdout and str(out) in proc.stdout and "Grad-CAM" in proc.stdout
    assert Image.open(out).size == (64, 64)
    model = bundled_model_dir()  # before _cli_here points FISHCORE_HOME at tmp_path
    # The mistakes, in this process (the same main(), without a process start each).
    bad = _cli_here(tmp_path, monkeypatch, capsys, "explain", model, photo, "--out", tmp_path / "x.gif")
    assert bad.returncode == 2 and "--out" in bad.stderr
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    bad = _cli_here(tmp_path, monkeypatch, capsys, "explain", model, text, "--out", out)
    assert bad.returncode == 2 and "notes.jpg" in bad.stderr and "text file" in bad.stderr
    bad = _cli_here(tmp_path, monkeypatch, capsys, "explain", model, photo, "--out", out, "--class", "Unicorn")
    assert bad.returncode == 2 and "Unicorn" in bad.stderr
