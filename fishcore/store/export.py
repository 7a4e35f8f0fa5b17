"""Taking a model elsewhere: an ONNX file any runtime can use, or a zip another fishcore install imports."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from fishcore.errors import ModelFileError
from fishcore.models.onnx_export import to_onnx
from fishcore.store.archive import ArchiveLimits, SafeZip
from fishcore.store.model_files import CARD_FILE, MODEL_FILES, WEIGHTS_FILE, ModelCard, load_model, model_archive, next_version
from fishcore.store.my_photos import safe_name


class _Probabilities(nn.Module):
    """The network with its calibration: normalised image batch -> calibrated class probabilities."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x) / self.temperature, dim=1)


def preprocessing(card: ModelCard) -> dict:
    """How to turn a photo into the ONNX model's input, exactly as fishcore's predictor does."""
    return {
        "input": "image",
        "output": "probabilities",
        "layout": "NCHW, float32, RGB",
        "steps": [
            "decode, apply the EXIF orientation, convert to RGB (transparency onto white)",
            f"resize the whole photo to {card.image_size}x{card.image_size} (aspect ratio not kept), bilinear, antialiased",
            "scale to 0-1 (divide by 255)",
            "subtract mean and divide by std, per channel",
        ],
        "image_size": card.image_size,
        "mean": card.mean,
        "std": card.std,
        "temperature": card.temperature,
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
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = to_onnx(_Probabilities(model, card.temperature), card.image_size, names=("image", "probabilities"))
    labels = out.with_suffix(".labels.txt")
    prep = out.with_suffix(".preprocessing.json")
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


def write_file(out_file: str | os.PathLike, data: bytes) -> Path:
    """Write data to out_file whole (a temporary file renamed into place); its path."""
    out = Path(out_file).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def export_zip(model_dir: str | os.PathLike, out_file: str | os.PathLike) -> Path:
    """The model folder as a zip (one top-level folder), for `fishcore import-model` elsewhere."""
    load_model(model_dir)  # refuse to export something that would not import
    return write_file(out_file, model_archive(model_dir))


def import_model_zip(source: str | os.PathLike | bytes, models_dir: str | os.PathLike, name: str | None = None) -> Path:
    """Unpack a model zip made by export_zip into models_dir as a new model (or a new version): never replaces.

    The archive is untrusted: only the model's own files are read, through the same checks as a photo
    zip; the weights must match the card's sha256 and load into the architecture it describes.
    """
    with SafeZip(source, ArchiveLimits(max_files=50, max_entry_bytes=1024**3)) as archive:
        by_name = {}
        for entry in archive:
            parts = PurePosixPath(entry.name).parts
            if parts[-1] in MODEL_FILES and len(parts) <= 2:
                by_name[parts[-1]] = entry
        if CARD_FILE not in by_name or WEIGHTS_FILE not in by_name:
            raise ModelFileError(f"not a fishcore model zip: it needs {CARD_FILE} and {WEIGHTS_FILE}")
        top = PurePosixPath(by_name[CARD_FILE].name).parts
        folder_name = name or (top[0] if len(top) == 2 else "imported-model")
        models = Path(models_dir)
        models.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=models))
        try:
            for file_name, entry in by_name.items():
                (tmp / file_name).write_bytes(archive.read(entry))
            load_model(tmp)  # card readable, weights match their sha256 and the architecture
            target, _ = next_version(models / safe_name(folder_name, "model name"))
            tmp.chmod(0o755)
            os.rename(tmp, target)
            return target
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
