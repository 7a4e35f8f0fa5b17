"""Predictions from a saved model: top-k species with probabilities and a verdict (see openset.py)."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fishcore.data.augment import build_transforms
from fishcore.data.images import ImageSource, load_image
from fishcore.errors import ImageError, ModelFileError, WeightsError
from fishcore.inference.calibration import Promise, SetRule, calibrated_probabilities
from fishcore.inference.engine import Engine
from fishcore.inference.openset import (
    CONFIDENT,
    NOT_A_FISH,
    UNCERTAIN,
    OpenSet,
    Scorer,
    Scores,
    fit_openset,
    judge,
    reference_indices,
)
from fishcore.models.backbones import get_backbone, imagenet_network
from fishcore.models.net import FishNet
from fishcore.models.quantize import dequantized, per_channel_int8, round_weights
from fishcore.store.catchlog.records import Answer
from fishcore.store.model_files import REFERENCE_FILE, ModelCard, load_model

MIN_SIDE = 16  # pixels: below this a photo cannot show a fish (the scan's default minimum too)

__all__ = ["CONFIDENT", "NOT_A_FISH", "UNCERTAIN", "Prediction", "Predictor", "read_openset"]


def combine_shots(probs: np.ndarray) -> np.ndarray:
    """Several shots of one fish as one answer: their calibrated log-probabilities averaged (a renormalised product,
    each probability clipped to 1e-12..1), so views that agree strengthen each other and one poor view is outvoted.
    ``probs``: (shots, classes). The field app's core.together is held to this by fieldapp/contract/cases.json."""
    log_p = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)).mean(axis=0)
    combined = np.exp(log_p - log_p.max())
    return combined / combined.sum()


@dataclass
class Prediction:
    """The top-k labels of one image, its confidence (top-1 probability), verdict and the verdict's reason."""

    file: str
    top: list[tuple[str, float]]
    verdict: str
    reason: str = ""
    distance: float | None = None  # to the nearest training photo (cosine); None without an open-set profile
    fish_likeness: float | None = None  # ImageNet fish/crustacean probability mass
    # The prediction set: the species it is one of, with the stated coverage (None: a model saved without a rule)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    coverage: float | None = None

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "top": [{"label": label, "prob": prob} for label, prob in self.top],
            "verdict": self.verdict,
            "reason": self.reason,
            "distance": self.distance,
            "fish_likeness": self.fish_likeness,
            "set": [{"label": label, "prob": prob} for label, prob in self.candidates],
            "set_coverage": self.coverage,
        }


def fit_verdict_profile(
    predictor: Predictor,
    train: Sequence[tuple[str, int]],
    val: Sequence[tuple[str, int]],
    progress: Callable[[int, int], None] | None = None,
) -> OpenSet:
    """The open-set profile of a model from its own photos: some training photos as references, validation for thresholds."""
    ref_paths = [train[i][0] for i in reference_indices([t for _, t in train])]
    val_paths = [p for p, _ in val]
    total = len(ref_paths) + len(val_paths)

    def step(offset: int) -> Callable[[int, int], None] | None:
        return (lambda d, _n: progress(offset + d, total)) if progress else None

    reference = predictor.score_files(ref_paths, progress=step(0))
    validation = predictor.score_files(val_paths, progress=step(len(ref_paths)))
    return fit_openset(reference, validation, [t for _, t in val])


def read_openset(model_dir: str | os.PathLike, card: ModelCard) -> OpenSet | None:
    """The model's open-set profile (reference features and thresholds), or None for a model saved without one."""
    entry = card.openset
    if not entry:
        return None
    path = Path(model_dir) / REFERENCE_FILE  # never a path from the card: a card may come from anywhere
    try:
        reference = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} cannot be read ({exc}); the model folder is damaged") from exc
    if reference.ndim != 2 or not len(reference):
        raise ModelFileError(f"{path} is not a table of reference features; the model folder is damaged")
    return OpenSet(reference, float(entry["distance_threshold"]), float(entry["fish_threshold"]))


class Predictor:
    """A model plus the preprocessing its card describes; thread-safe for concurrent inference."""

    def __init__(self, model: FishNet, card: ModelCard, engine: str = "torch", openset: OpenSet | None = None) -> None:
        # The weights the phone computes with (8 bits per output channel, models/quantize.py), so that the
        # station and the phone give the same answers by construction; the caller's model stays as it was.
        # The class scores' own layer stays float32 (small; an instant head folds the features' standardisation
        # into it, which 8 bits would not hold); the package keeps it so too (package.CLASS_LAYER).
        self.model = copy.deepcopy(model).eval()
        round_weights(self.model, keep=(getattr(self.model.head, "fc", None),))
        self.card = card
        if openset is not None and len(openset.reference):
            # The reference features too (8 bits per photo's row), as the phone's package stores them.
            q, scale = per_channel_int8(np.asarray(openset.reference, dtype=np.float32), 0)
            openset = replace(openset, reference=dequantized(q, scale, 0))
        self.openset = openset
        imagenet = None
        if card.pretrained:
            try:
                imagenet = imagenet_network(card.backbone)
                for part in (*imagenet[0], imagenet[1]):
                    round_weights(part)
            except WeightsError:
                imagenet = None  # no fish-likeness signal: unfamiliar photos are "uncertain", never "not a fish"
        self.has_fish_signal = imagenet is not None
        self.promise = Promise.from_card(card.promise)  # None for a model saved before thresholds were chosen
        self.set_rule = SetRule.from_card(card.prediction_sets)
        # The stage training fine-tuned from (a loaded model is frozen throughout, so ask its card).
        cfg = card.model_config
        cut = cfg.freeze_until if cfg.freeze_until is not None else get_backbone(card.backbone).default_freeze_until
        self.scorer = Scorer(self.model, imagenet, cut).eval()
        # "auto" runs the network in onnxruntime when it can (faster on CPU), else in torch.
        self.engine = Engine(self.scorer, card.image_size, engine)
        self.classes = list(card.classes)
        # Rebuilt from the card, never from constants: the same factory training used, without augmentation.
        self.transform = build_transforms(
            None, train=False, image_size=card.image_size, mean=tuple(card.mean), std=tuple(card.std)
        )

    @classmethod
    def load(cls, model_dir: str | os.PathLike, engine: str = "torch") -> Predictor:
        model, card = load_model(model_dir)
        return cls(model, card, engine=engine, openset=read_openset(model_dir, card))

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def answer(self, p: Prediction, threshold: float | None = None) -> Answer:
        """A prediction as the catch log records it, with the thresholds its verdict used (``threshold``: the
        confidence threshold in force when the user moved it, else the model's own)."""
        return Answer.from_prediction(
            p, self.openset.distance_threshold if self.openset else None, self.card.threshold if threshold is None else threshold
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    @torch.inference_mode()
    def scores(self, images: Sequence[Image.Image], batch_size: int = 32) -> Scores:
        """Logits, unit-length features and fish-likeness of images, from one network pass."""
        out = [
            self.engine(torch.stack([self.preprocess(im) for im in images[i : i + batch_size]]))
            for i in range(0, len(images), batch_size)
        ]
        n = len(self.classes)
        return Scores.split(torch.cat(out), n) if out else Scores.split(torch.zeros(0, n + 2), n)

    def score_files(
        self, sources: Sequence[ImageSource], batch_size: int = 32, progress: Callable[[int, int], None] | None = None
    ) -> Scores:
        """Scores of readable image files (see load_image for the errors), batch by batch."""
        parts = []
        for start in range(0, len(sources), batch_size):
            images = [self.read(s) for s in sources[start : start + batch_size]]
            parts.append(self.scores(images, batch_size))
            if progress:
                progress(min(start + batch_size, len(sources)), len(sources))
        if not parts:
            return self.scores([])
        return Scores(
            torch.cat([p.logits for p in parts]),
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.fish for p in parts]),
        )

    def probabilities(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Calibrated class probabilities, one row per image."""
        return calibrated_probabilities(self.scores(images, batch_size).logits, self.card.temperature).numpy()

    def candidates(self, probs: np.ndarray) -> tuple[list[tuple[str, float]], float | None]:
        """The prediction set of one photo's calibrated probabilities, and its coverage (nothing without a rule)."""
        if self.set_rule is None:
            return [], None
        return [(self.classes[i], float(probs[i])) for i in self.set_rule.members(probs)], self.set_rule.coverage

    def judged(self, prediction: Prediction, threshold: float | None = None) -> Prediction:
        """The prediction with its verdict and reason (re)decided at a confidence threshold (default: the card's)."""
        verdict, reason = judge(
            prediction.confidence,
            prediction.distance,
            prediction.fish_likeness if self.has_fish_signal else None,
            self.card.threshold if threshold is None else threshold,
            self.openset,
        )
        return replace(prediction, verdict=verdict, reason=reason)

    def read(self, source: ImageSource) -> Image.Image:
        """A photo ready for the model, or ImageError saying exactly what is wrong with it.

        Decoded at full size, as a phone's browser decodes it: a JPEG read at a reduced DCT scale (PIL's draft)
        is cheaper but gives other pixels, and the station and the phone then disagree on large photos."""
        image = load_image(source)
        if min(image.size) < MIN_SIDE:
            w, h = image.size
            raise ImageError(f"too small to judge ({w}x{h} pixels; at least {MIN_SIDE} on each side)")
        return image

    def read_file(self, path: str | os.PathLike) -> Image.Image:
        """read() for a photo of a dataset: its error message starts with the file's path."""
        try:
            return self.read(path)
        except ImageError as exc:
            raise ImageError(f"{path}: {exc}", path=str(path)) from exc

    def predict(
        self,
        sources: Sequence[ImageSource],
        top_k: int = 3,
        threshold: float | None = None,
        batch_size: int = 32,
        names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        on_error: Callable[[int, ImageError], None] | None = None,
    ) -> list[Prediction]:
        """Predict files, bytes or streams.

        A source that cannot be read raises ImageError (see load_image), or, with ``on_error``, is
        reported there (its index and the error) and skipped while the others are still predicted.
        """
        k = max(1, min(top_k, len(self.classes)))
        results: list[Prediction] = []
        for start in range(0, len(sources), batch_size):
            images, kept = [], []
            for n in range(start, min(start + batch_size, len(sources))):
                try:
                    images.append(self.read(sources[n]))
                    kept.append(n)
                except ImageError as exc:
                    if on_error is None:
                        raise
                    on_error(n, exc)
            scores = self.scores(images, batch_size)
            probs = calibrated_probabilities(scores.logits, self.card.temperature).numpy()
            distances = self.openset.distances(scores.features) if self.openset is not None else None
            for j, (n, p) in enumerate(zip(kept, probs, strict=True)):
                idx = np.argsort(-p)[:k]
                top = [(self.classes[i], float(p[i])) for i in idx]
                name = (
                    names[n]
                    if names
                    else (str(Path(sources[n])) if isinstance(sources[n], (str, os.PathLike)) else f"image {n + 1}")
                )
                candidates, coverage = self.candidates(p)
                guess = Prediction(
                    name,
                    top,
                    UNCERTAIN,
                    distance=float(distances[j]) if distances is not None else None,
                    fish_likeness=float(scores.fish[j]),
                    candidates=candidates,
                    coverage=coverage,
                )
                results.append(self.judged(guess, threshold))
            if progress:
                progress(min(start + batch_size, len(sources)), len(sources))
        return results

    def predict_together(
        self, sources: Sequence[ImageSource], top_k: int = 3, threshold: float | None = None, names: Sequence[str] | None = None
    ) -> tuple[Prediction, list[Prediction]]:
        """One verdict from several photos of the same fish, and each photo's own answer.

        The photos' calibrated log-probabilities are averaged (a product of the probabilities,
        renormalised), so views that agree strengthen each other and one poor view is outvoted. The
        familiarity distance and fish-likeness are the photos' means. An unreadable photo raises ImageError.
        """
        if not sources:
            raise ImageError("no photos to combine")
        singles = self.predict(sources, top_k=len(self.classes), threshold=threshold, names=names)
        combined = combine_shots(np.array([[dict(p.top)[c] for c in self.classes] for p in singles]))
        k = max(1, min(top_k, len(self.classes)))
        top = [(self.classes[i], float(combined[i])) for i in np.argsort(-combined)[:k]]
        distances = [p.distance for p in singles if p.distance is not None]
        candidates, coverage = self.candidates(combined)
        together = Prediction(
            f"{len(singles)} photos together",
            top,
            UNCERTAIN,
            distance=float(np.mean(distances)) if distances else None,
            fish_likeness=float(np.mean([p.fish_likeness for p in singles if p.fish_likeness is not None] or [0.0])),
            candidates=candidates,
            coverage=coverage,
        )
        return self.judged(together, threshold), [replace(p, top=p.top[:k]) for p in singles]
