"""Taking a model to another fishcore install: the model folder as a zip, and importing one (untrusted). The ONNX
exports for other runtimes and the phone are fishcore.inference.package."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from fishcore.errors import ModelFileError
from fishcore.store.archive import ArchiveLimits, SafeZip
from fishcore.store.model_files import CARD_FILE, MODEL_FILES, WEIGHTS_FILE, load_model, model_archive, next_version
from fishcore.store.my_photos import safe_name


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
