"""Grad-CAM: where in a photo the evidence for a class lies, as a heat map over the photo.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization"
(ICCV 2017). The backbone's last feature maps A (C x h x w, 7 x 7 for a 224 px input) are weighted by
the spatial mean of the class score's gradient with respect to them; the positive part of that sum is
the map. It is taken where the backbone hands over to the head, so the paper's residual block is part
of what is explained. Bright means "this region raised the class's score the most"; it is not an
outline of the fish.

The backbone runs once without gradients and only the head is differentiated, so a map costs one
forward pass plus a backward pass through the head (tens of milliseconds on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fishcore.data.images import ImageSource
from fishcore.errors import ConfigError
from fishcore.inference.calibration import calibrated_probabilities
from fishcore.models.net import FishNet

# Plain words for the UI and the CLI; the pages show them under every heat map.
CAPTION = (
    "Grad-CAM: bright areas are where the network found the most evidence for this species; dark areas "
    "added little. It shows where the evidence is, not the outline of the fish, and it is coarse (a 7 x 7 "
    "grid stretched over the photo)."
)


@dataclass
class Explanation:
    """A heat map (rows x columns of the photo as given, values 0..1) for one class of one photo."""

    label: str
    class_index: int
    probability: float  # the class's calibrated probability for this photo
    heat: np.ndarray  # float32, the photo's size, 0 (no evidence) .. 1 (the most)
    image: Image.Image  # the photo as the model read it (EXIF-rotated, RGB), at its own size


def grad_cam(model: FishNet, x: torch.Tensor, class_index: int | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """Grad-CAM of one preprocessed image (1 x 3 x H x W) at the backbone's output.

    Returns (map at the input's H x W, scaled to 0..1; the logits). ``class_index`` None explains the
    top class. A map without any positive evidence is all zeros.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"grad_cam takes one image as a 1 x 3 x H x W tensor, not {tuple(x.shape)}")
    model.eval()
    with torch.no_grad():
        maps = model.backbone(x.float())
    maps = maps.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.head(maps)
        index = int(logits.argmax(1)) if class_index is None else class_index
        if not 0 <= index < logits.shape[1]:
            raise ValueError(f"class index {index} is outside 0..{logits.shape[1] - 1}")
        (grads,) = torch.autograd.grad(logits[0, index], maps)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # one weight per channel
    cam = torch.relu((weights * maps.detach()).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    top = float(cam.max())
    heat = (cam / top).numpy() if top > 0 else np.zeros(tuple(x.shape[-2:]), dtype=np.float32)
    return heat.astype(np.float32), logits.detach()


def explain(predictor, source: ImageSource, label: str | None = None) -> Explanation:
    """Grad-CAM of a photo for ``label`` (default: the predicted species) with the predictor's model.

    The map is stretched back to the photo's own size (the model sees the photo resized to a square,
    without cropping, so every part of the photo has its place on the map).
    """
    classes = predictor.classes
    if label is not None and label not in classes:
        raise ConfigError("class", label, f"is not a class of this model ({', '.join(classes)})")
    image = predictor.read(source)
    x = predictor.preprocess(image).unsqueeze(0)
    index = None if label is None else classes.index(label)
    heat, logits = grad_cam(predictor.model, x, index)
    probs = calibrated_probabilities(logits, predictor.card.temperature)[0]
    index = int(probs.argmax()) if index is None else index
    resized = np.asarray(Image.fromarray(heat).resize(image.size, Image.BILINEAR), dtype=np.float32)
    return Explanation(classes[index], index, float(probs[index]), np.clip(resized, 0.0, 1.0), image)


def overlay(image: Image.Image, heat: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """The photo with the heat map blended over it (OpenCV's JET colours: blue little, red most evidence)."""
    import cv2

    if not 0.0 <= opacity <= 1.0:
        raise ConfigError("opacity", opacity, "must be from 0 to 1")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    if heat.shape != rgb.shape[:2]:
        heat = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(image.size, Image.BILINEAR))
    colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[:, :, ::-1].astype(np.float32)
    return Image.fromarray(np.uint8((1 - opacity) * rgb + opacity * colours))
