"""A model as one download for clients that answer without the station: the field app on a phone, any ONNX runtime.

``model.onnx`` takes a batch of photos prepared as ``model.json`` says and outputs everything a verdict needs:
``probabilities`` (calibrated: the model's temperature is inside the graph), ``distance`` (cosine distance
to the nearest of the model's reference photos) and ``fish_likeness`` (ImageNet's fish and crustacean
probability mass). ``model.json`` carries the classes, their species cards in both languages, the
preprocessing, the thresholds (confidence, distance, fish-likeness), the prediction-set rule and what
"confident" promises. The decision itself is fishcore.inference.openset.judge, written out in ``rule``: a
client applies the same rule to the same numbers and gives the station's answer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fishcore.inference.predict import Predictor
from fishcore.models.onnx_export import to_onnx
from fishcore.store.model_files import family_of, model_checksum

PACKAGE_FORMAT = 1
OUTPUTS = ("probabilities", "distance", "fish_likeness")


class VerdictNet(nn.Module):
    """The predictor's network with its temperature and reference photos: photos in, the verdict's numbers out."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self.scorer = predictor.scorer
        self.n_classes = len(predictor.classes)
        self.temperature = float(predictor.card.temperature)
        reference = predictor.openset.reference if predictor.openset is not None else None
        self.has_reference = reference is not None and len(reference) > 0
        ref = torch.from_numpy(np.asarray(reference, dtype=np.float32)) if self.has_reference else torch.zeros(1, 1)
        self.register_buffer("reference", ref, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.scorer(x)
        logits = out[:, : self.n_classes]
        features = out[:, self.n_classes : -1]
        fish = out[:, -1]
        probabilities = torch.softmax(logits / self.temperature, dim=1)
        # Without a profile every photo counts as familiar (distance 0).
        distance = 1.0 - (features @ self.reference.T).max(dim=1).values if self.has_reference else torch.zeros_like(fish)
        return probabilities, distance, fish


@dataclass(frozen=True)
class Package:
    """The download: the zip's bytes, its ETag (the sha256 of the bytes) and the model's description."""

    data: bytes
    etag: str
    meta: dict


def describe(predictor: Predictor, model_dir: str | os.PathLike) -> dict:
    """What a client needs besides the graph (model.json)."""
    card = predictor.card
    folder = Path(model_dir)
    name, version = family_of(folder.name)
    openset = predictor.openset
    return {
        "format": PACKAGE_FORMAT,
        "name": name,
        "folder": folder.name,
        "version": version,
        "checksum": model_checksum(folder),
        "created": card.created,
        "classes": list(card.classes),
        "species": {c: card.species.get(c, {}) for c in card.classes},
        "input": {
            "name": "image",
            "layout": "NCHW float32 RGB",
            "image_size": card.image_size,
            "resize": "the whole photo to image_size x image_size (aspect ratio not kept), bilinear, antialiased",
            "scale": "divide by 255",
            "mean": list(card.mean),
            "std": list(card.std),
            "orientation": "apply the photo's EXIF orientation first; transparency onto white",
        },
        "outputs": list(OUTPUTS),
        "temperature": card.temperature,  # already inside the graph's probabilities
        "threshold": card.threshold,
        "distance_threshold": openset.distance_threshold if openset else None,
        "fish_threshold": openset.fish_threshold if openset else None,
        "fish_signal": predictor.has_fish_signal,
        "prediction_sets": {k: card.prediction_sets[k] for k in ("coverage", "quantile") if k in card.prediction_sets},
        "promise": {k: card.promise[k] for k in ("precision", "level", "backed", "photos", "threshold") if k in card.promise},
        "rule": [
            "familiar = no distance_threshold, or distance <= distance_threshold",
            "familiar and top probability >= threshold: confident (reason known)",
            "familiar and below threshold: uncertain (reason low_confidence)",
            "unfamiliar and fish_likeness < fish_threshold: not_a_fish (reason not_fish_like)",
            "unfamiliar otherwise: uncertain (reason unfamiliar)",
            "prediction set: every species with probability >= 1 - quantile, most probable first, and always the top one",
        ],
    }


def build_package(model_dir: str | os.PathLike) -> Package:
    """model.onnx and model.json of a saved model, zipped; deterministic for one model version."""
    predictor = Predictor.load(model_dir)
    graph = to_onnx(VerdictNet(predictor).eval(), predictor.card.image_size, names=("image", *OUTPUTS))
    meta = describe(predictor, model_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in (("model.onnx", graph), ("model.json", json.dumps(meta, indent=1, ensure_ascii=False).encode())):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same model, the same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    data = buf.getvalue()
    return Package(data, hashlib.sha256(data).hexdigest(), meta)


def cached_package(model_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> Package:
    """build_package, kept on disk per model version (a model's checksum names its package)."""
    checksum = model_checksum(model_dir)
    folder = Path(cache_dir) / "packages"
    path = folder / f"{checksum}.zip"
    if path.is_file():
        data = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read("model.json"))
        return Package(data, hashlib.sha256(data).hexdigest(), meta)
    package = build_package(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(package.data)
    os.replace(tmp, path)
    return package
