"""A model for elsewhere, as ONNX: the one export path, on the one calibrated softmax (calibration.
calibrated_probabilities) and the one description of a photo's preparation (``input_description``).

- ``export_onnx`` / ``onnx_bundle``: the network with its calibration for any ONNX runtime (`fishcore export
  --format onnx|onnx-zip`, the Models page's "Export ONNX"): probabilities out, the species and how to prepare a
  photo beside it.
- ``build_package`` / ``cached_package``: one download for clients that answer without the station (the field app
  on a phone):

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
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fishcore.inference.calibration import calibrated_probabilities
from fishcore.inference.predict import Predictor
from fishcore.models.onnx_export import to_onnx
from fishcore.models.quantize import quantize_weights
from fishcore.store.export import write_file
from fishcore.store.model_files import ModelCard, family_of, load_model, model_checksum

CLASS_LAYER = "scorer.model.head.fc.weight"  # float32 in the package, as in the Predictor
PACKAGE_FORMAT = 2  # 2: weights in 8 bits (DequantizeLinear), reference features in float16
OUTPUTS = ("probabilities", "distance", "fish_likeness")


class ProbabilityNet(nn.Module):
    """The network with its calibration: a normalised image batch in, calibrated class probabilities out."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return calibrated_probabilities(self.model(x), self.temperature)


def input_description(card: ModelCard) -> dict:
    """How a photo becomes the graph's input, exactly as fishcore's predictor prepares it (the phone's model.json and
    the ONNX export's preprocessing.json both say it with these words)."""
    return {
        "name": "image",
        "layout": "NCHW float32 RGB",
        "image_size": card.image_size,
        "resize": "the whole photo to image_size x image_size (aspect ratio not kept), bilinear, antialiased",
        "scale": "divide by 255",
        "mean": list(card.mean),
        "std": list(card.std),
        "orientation": "apply the photo's EXIF orientation first; transparency onto white",
    }


def preprocessing(card: ModelCard) -> dict:
    """The ONNX export's preprocessing.json: the input, the output, and what the probabilities mean."""
    return {
        "input": input_description(card),
        "output": "probabilities",
        "temperature": card.temperature,  # already inside the graph's probabilities
        "threshold": card.threshold,
        # What the threshold promises (share of confident answers right) and the prediction sets' rule: a set
        # holds every species with probability >= 1 - quantile (and the top one), `coverage` of the time.
        "promise": {k: card.promise[k] for k in ("precision", "level", "backed", "photos") if k in card.promise},
        "prediction_sets": {k: card.prediction_sets[k] for k in ("coverage", "quantile") if k in card.prediction_sets},
        "classes": card.classes,
    }


def export_onnx(model_dir: str | os.PathLike, out_file: str | os.PathLike) -> list[Path]:
    """Write OUT.onnx (calibrated probabilities), OUT.labels.txt and OUT.preprocessing.json; returns the paths."""
    model, card = load_model(model_dir)
    out = Path(out_file).expanduser()
    if out.suffix.lower() != ".onnx":
        out = out.with_name(out.name + ".onnx")
    graph = to_onnx(ProbabilityNet(model, card.temperature), card.image_size, names=("image", "probabilities"))
    labels, prep = out.with_suffix(".labels.txt"), out.with_suffix(".preprocessing.json")
    write_file(out, graph)
    write_file(labels, ("\n".join(card.classes) + "\n").encode())
    write_file(prep, json.dumps(preprocessing(card), indent=1, ensure_ascii=False).encode())
    return [out, labels, prep]


def onnx_bundle(model_dir: str | os.PathLike) -> bytes:
    """export_onnx's three files in one zip, named after the model (the Models page's "Export ONNX", and
    `fishcore export --format onnx-zip`)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = export_onnx(model_dir, Path(tmp) / Path(model_dir).name)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.name)
    return buf.getvalue()


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
        probabilities = calibrated_probabilities(logits, self.temperature)
        # Without a profile every photo counts as familiar (distance 0).
        distance = 1.0 - (features @ self.reference.T).max(dim=1).values if self.has_reference else torch.zeros_like(fish)
        return probabilities, distance, fish


PART_BYTES = 16_384  # a weight this large is a part of its own: a phone keeps it, by its sha256, across versions


def split_parts(graph: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The graph with every weight of at least PART_BYTES moved out as ONNX external data named by its sha256,
    and those parts. A weight no teaching changes (the frozen trunk, the ImageNet tail) has the same bytes, so the
    same name, in every version: a phone that has it never downloads it again."""
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load_from_string(graph)
    parts: dict[str, bytes] = {}
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.raw_data) < PART_BYTES:
            continue
        data = tensor.raw_data
        name = hashlib.sha256(data).hexdigest()
        parts[name] = data
        set_external_data(tensor, location=name, offset=0, length=len(data))
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
    return model.SerializeToString(), parts


def joined_graph(graph: bytes, parts: dict[str, bytes]) -> bytes:
    """The graph with its parts back inside (for onnxruntime in Python, which reads external data from files)."""
    import onnx

    model = onnx.load_from_string(graph)
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = {e.key: e.value for e in tensor.external_data}
        tensor.raw_data = parts[where["location"]]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    return model.SerializeToString()


@dataclass(frozen=True)
class Package:
    """The download: the zip's bytes, its ETag (the sha256 of the bytes) and the model's description; ``parts``:
    the weights' files by sha256 (inside the zip too), for a download that leaves out those a phone has."""

    data: bytes
    etag: str
    meta: dict
    graph: bytes = b""
    parts: dict[str, bytes] | None = None

    def without(self, have: set[str] | frozenset[str]) -> bytes:
        """The zip with the parts in ``have`` left out (same model.json and model.onnx: an update)."""
        return _zip(self.meta, self.graph, {k: v for k, v in (self.parts or {}).items() if k not in have})

    @classmethod
    def read(cls, data: bytes) -> Package:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read("model.json"))
            graph = z.read("model.onnx")
            parts = {n.split("/", 1)[1]: z.read(n) for n in z.namelist() if n.startswith("parts/")}
        return cls(data, hashlib.sha256(data).hexdigest(), meta, graph, parts)

    def onnx(self) -> bytes:
        """The whole graph, parts inside: what onnxruntime in Python runs."""
        return joined_graph(self.graph, self.parts or {})


def _zip(meta: dict, graph: bytes, parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    files = [("model.json", json.dumps(meta, indent=1, ensure_ascii=False).encode()), ("model.onnx", graph)]
    files += [(f"parts/{name}", data) for name, data in sorted(parts.items())]
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same model, the same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


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
        "input": input_description(card),
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
    """model.onnx, its parts and model.json of a saved model, zipped; deterministic for one model version."""
    predictor = Predictor.load(model_dir)
    # The predictor's weights are already rounded to 8 bits (Predictor): stored so, they are the same numbers.
    full = quantize_weights(
        to_onnx(VerdictNet(predictor).eval(), predictor.card.image_size, names=("image", *OUTPUTS)), keep={CLASS_LAYER}
    )
    graph, parts = split_parts(full)
    meta = describe(predictor, model_dir)
    meta["parts"] = [{"sha256": name, "bytes": len(data)} for name, data in parts.items()]
    data = _zip(meta, graph, parts)
    return Package(data, hashlib.sha256(data).hexdigest(), meta, graph, parts)


def cached_package(model_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> Package:
    """build_package, kept on disk per model version (a model's checksum names its package)."""
    checksum = model_checksum(model_dir)
    folder = Path(cache_dir) / "packages"
    path = folder / f"{checksum}.zip"
    if path.is_file():
        try:
            package = Package.read(path.read_bytes())
        except (zipfile.BadZipFile, KeyError, ValueError):
            package = None  # damaged on disk: made again below
        if package is not None and package.meta.get("format") == PACKAGE_FORMAT:
            return package  # (one made by an older fishcore is made again too)
    package = build_package(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(package.data)
    os.replace(tmp, path)
    return package
