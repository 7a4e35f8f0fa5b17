"""Predictions from a saved model: top-k species with probabilities and an 'uncertain' verdict."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fishcore.data.augment import build_transforms
from fishcore.data.dataset import ImageSource, load_image
from fishcore.inference.calibration import calibrated_probabilities
from fishcore.inference.engine import Engine
from fishcore.models.net import FishNet
from fishcore.store.model_files import ModelCard, load_model

CONFIDENT = "confident"
UNCERTAIN = "uncertain"


@dataclass
class Prediction:
    """The top-k labels of one image, its confidence (top-1 probability) and verdict."""

    file: str
    top: list[tuple[str, float]]
    verdict: str

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    def to_dict(self) -> dict:
        return {"file": self.file, "top": [{"label": label, "prob": prob} for label, prob in self.top], "verdict": self.verdict}


class Predictor:
    """A model plus the preprocessing its card describes; thread-safe for concurrent inference."""

    def __init__(self, model: FishNet, card: ModelCard, engine: str = "torch") -> None:
        self.model = model.eval()
        self.card = card
        # "auto" runs the network in onnxruntime when it can (faster on CPU), else in torch.
        self.engine = Engine(self.model, card.image_size, engine)
        self.classes = list(card.classes)
        # Rebuilt from the card, never from constants: the same factory training used, without augmentation.
        self.transform = build_transforms(
            None, train=False, image_size=card.image_size, mean=tuple(card.mean), std=tuple(card.std)
        )

    @classmethod
    def load(cls, model_dir: str | os.PathLike, engine: str = "torch") -> Predictor:
        return cls(*load_model(model_dir), engine=engine)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Calibrated class probabilities, one row per image."""
        out = []
        for i in range(0, len(images), batch_size):
            x = torch.stack([self.preprocess(im) for im in images[i : i + batch_size]])
            out.append(calibrated_probabilities(self.engine(x), self.card.temperature).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def verdict(self, confidence: float, threshold: float | None = None) -> str:
        return CONFIDENT if confidence >= (self.card.threshold if threshold is None else threshold) else UNCERTAIN

    def predict(
        self,
        sources: Sequence[ImageSource],
        top_k: int = 3,
        threshold: float | None = None,
        batch_size: int = 32,
        names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Predict files, bytes or streams (all must be readable images; see load_image for the errors)."""
        k = max(1, min(top_k, len(self.classes)))
        results: list[Prediction] = []
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            images = [load_image(s, min_size=self.card.image_size) for s in chunk]
            probs = self.probabilities(images, batch_size)
            for j, p in enumerate(probs):
                idx = np.argsort(-p)[:k]
                top = [(self.classes[i], float(p[i])) for i in idx]
                n = start + j
                name = (
                    names[n]
                    if names
                    else (str(Path(sources[n])) if isinstance(sources[n], (str, os.PathLike)) else f"image {n + 1}")
                )
                results.append(Prediction(name, top, self.verdict(top[0][1], threshold)))
            if progress:
                progress(min(start + batch_size, len(sources)), len(sources))
        return results
