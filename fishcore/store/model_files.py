"""A saved model is a directory: weights.pt (a state_dict) and card.json (everything needed to use it)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fishcore.config import from_dict
from fishcore.errors import ModelFileError
from fishcore.models.backbones import file_sha256
from fishcore.models.config import ModelConfig
from fishcore.settings import Paths
from fishcore.store.jsonfile import read_jsonl, write_json

if TYPE_CHECKING:  # torch is imported where weights are read or written: the catch log and the server need none
    from fishcore.models.net import FishNet

FORMAT = "fishcore-model"
# 2: typed training record (mode, precision, total time always present), model head.
# 3: no `history` in the card: metrics.jsonl is the one metrics history (a row per evaluation step).
FORMAT_VERSION = 3
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.json"
METRICS_FILE = "metrics.jsonl"
TEST_REPORT_FILE = "test_report.json"
REFERENCE_FILE = "reference.npy"  # features of some training photos, for verdicts (inference/openset.py)
HELDOUT_FILE = "heldout.npz"  # logits of photos the model never trained on: its threshold and sets (training/heldout.py)
# Every file a model folder may hold: what a model zip carries and what an import takes from one.
MODEL_FILES = (CARD_FILE, WEIGHTS_FILE, METRICS_FILE, TEST_REPORT_FILE, REFERENCE_FILE, HELDOUT_FILE)


def bundled_model_dir() -> Path:
    """The model shipped with the project."""
    return Paths.from_env().bundled_model


@dataclass
class TrainingRecord:
    """How a model was trained: what a user waited for, how it ended, on what."""

    mode: str = "full"  # instant | fast | full
    seconds: float = 0.0  # fitting alone
    total_seconds: float = 0.0  # what a user waits for: feature caching plus fitting
    epochs: int = 0
    iterations: int = 0
    evaluations: int = 0  # validation steps: the rows of the model's metrics.jsonl
    stop_reason: str = "completed"  # a fishcore.events.StopReason
    best_val_loss: float | None = None
    best_iteration: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    views: int | None = None  # augmented views per photo (instant and fast modes)
    feature_seconds: float | None = None
    views_computed: int | None = None
    views_total: int | None = None
    engine: str | None = None  # what computed the cached features: onnxruntime, torch or cache
    recipe: str | None = None  # auto mode: the candidate chosen on validation
    candidates: list[dict[str, Any]] = field(default_factory=list)  # auto mode: every candidate's validation score and time

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def migrate_card(data: dict[str, Any]) -> dict[str, Any]:
    """A card dict of any earlier format version, brought to the current one (the file is not rewritten)."""
    data = dict(data)
    if data.get("format_version") == 1:
        # Version 1 recorded mode, precision and total time only from the fast-mode release on; a card
        # without them was trained in full mode, in float32, and waited for no feature caching.
        training = dict(data.get("training") or {})
        training.setdefault("mode", "full")
        training.setdefault("precision", "fp32")
        training.setdefault("total_seconds", round(training.get("seconds", 0.0) + (training.get("feature_seconds") or 0.0), 2))
        data["training"] = training
        config = dict(data.get("config") or {})
        config["model"] = {"head": "residual", **(config.get("model") or {})}
        data["config"] = config
        data["format_version"] = 2
    if data.get("format_version") == 2:
        # Version 2 kept every training event in the card (`history`) beside metrics.jsonl: read_metrics
        # gives the validation rows of either file format; the card keeps the count.
        history = data.pop("history", None) or []
        training = dict(data.get("training") or {})
        training.setdefault("evaluations", sum(1 for row in history if row.get("name") == "validation"))
        data["training"] = training
        data["format_version"] = 3
    return data


def read_metrics(model_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The model's metrics history: one row per evaluation step, oldest first ([] when there is none).

    Models saved before card format 3 wrote every training event to metrics.jsonl; only their validation
    rows are the history. A damaged line (a crash while writing) is skipped.
    """
    rows = [r for r in read_jsonl(Path(model_dir) / METRICS_FILE) if r.get("name", "validation") == "validation"]
    return [{k: v for k, v in r.items() if k not in ("name", "message")} for r in rows]


@dataclass
class ModelCard:
    """Plain-typed metadata of a trained model: provenance, preprocessing, split, metrics, how it was trained.

    The curve of its training is not here: metrics.jsonl beside it (read_metrics) is the one history.
    """

    classes: list[str]
    image_size: int
    mean: list[float]
    std: list[float]
    backbone: str
    pretrained: bool
    backbone_weights_sha256: str | None = None
    backbone_weights_source: str = ""
    temperature: float = 1.0
    threshold: float = 0.6  # "confident" from this calibrated probability on: chosen per model (see `promise`)
    config: dict[str, Any] = field(default_factory=dict)  # {"data": ..., "model": ..., "train": ...}
    split: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)  # root, fingerprint, counts, citation, notes
    metrics: dict[str, Any] = field(default_factory=dict)  # summary of test (and validation) evaluation
    training: TrainingRecord = field(default_factory=TrainingRecord)
    notes: list[str] = field(default_factory=list)
    # name, version, parent (folder of the version it follows), classes_added, classes_removed: see lineage()
    lineage: dict[str, Any] = field(default_factory=dict)
    # How verdicts tell "not a fish" and "a species I do not know" (fishcore.inference.openset); {} for older models.
    openset: dict[str, Any] = field(default_factory=dict)
    # What the threshold promises and what backs it (fishcore.inference.calibration.Promise); {} for older
    # models, whose 0.6 was one number for every model.
    promise: dict[str, Any] = field(default_factory=dict)
    # The rule of the prediction sets for answers that are not confident (calibration.SetRule); {} for older models.
    prediction_sets: dict[str, Any] = field(default_factory=dict)
    # Species cards by class: names in English and Indonesian, scientific name, note (fishcore.store.species).
    species: dict[str, dict[str, str]] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    weights_sha256: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def data_root(self) -> Path | None:
        """The folder the model was trained from (paths of its split are relative to it), if recorded."""
        root = self.split.get("root")
        return Paths.from_env().portable(root) if root else None

    @property
    def test_root(self) -> Path | None:
        """The folder the saved test split's paths are relative to (a separate test folder, or data_root)."""
        root = self.split.get("test_root")
        return Paths.from_env().portable(root) if root else self.data_root

    @property
    def model_config(self) -> ModelConfig:
        return from_dict(ModelConfig, self.config.get("model"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelFileError("not a fishcore model card (no 'format': 'fishcore-model')")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"model format version {version} is newer than this fishcore understands ({FORMAT_VERSION}); upgrade fishcore"
            )
        data = migrate_card(data)
        known = {f.name for f in fields(cls)}
        try:
            card = cls(**{k: v for k, v in data.items() if k in known})
            card.training = TrainingRecord.from_dict(data.get("training") or {})
        except (TypeError, AttributeError) as exc:
            raise ModelFileError(f"model card is incomplete: {exc}") from exc
        return card


def save_model(model: FishNet, card: ModelCard, out_dir: str | os.PathLike, extra_files: dict[str, Path] | None = None) -> Path:
    """Write weights and card to a temporary folder beside out_dir, then move it into place in one rename.

    An existing out_dir is never touched: ModelFileError instead (save_version picks a free name).
    """
    import torch

    out = Path(out_dir).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is an ordinary, shareable folder
        torch.save(model.state_dict(), tmp / WEIGHTS_FILE)
        card.weights_sha256 = file_sha256(tmp / WEIGHTS_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        for name, src in (extra_files or {}).items():
            if Path(src).is_file():
                shutil.copyfile(src, tmp / name)
        if out.exists():
            raise ModelFileError(f"{out} already exists", path=str(out))
        try:
            os.rename(tmp, out)  # fails on an existing, non-empty folder: never replaces
        except OSError as exc:
            raise ModelFileError(f"{out} already exists", path=str(out)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_card(model_dir: str | os.PathLike) -> ModelCard:
    """The card of a saved model, with a clear error when the folder is not a usable fishcore model."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ModelFileError(f"model folder not found: {path}")
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ModelFileError(f"{path} is not a fishcore model (no {CARD_FILE})")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{card_path} is corrupt (not valid JSON: {exc})") from exc
    return ModelCard.from_dict(data)


def save_openset(model_dir: str | os.PathLike, card: ModelCard, reference: np.ndarray, entry: dict[str, Any]) -> None:
    """Give a saved model a (new) verdict profile: the reference file first, then the card, each replaced atomically.

    A crash in between leaves the old card, which either has no profile (the new file is unused) or
    names the same file; the weights are untouched.
    """
    path = Path(model_dir)
    tmp = path / f".{REFERENCE_FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, reference)
    os.replace(tmp, path / REFERENCE_FILE)
    card.openset = entry
    write_json(path / CARD_FILE, card.to_dict(), indent=1)


def load_model(model_dir: str | os.PathLike, verify: bool = True) -> tuple[FishNet, ModelCard]:
    """Rebuild a saved model on the CPU from its card and state_dict (weights_only=True), ready for inference."""
    import torch

    from fishcore.models.net import FishNet, freeze

    path = Path(model_dir).expanduser()
    card = read_card(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"{path} has no {WEIGHTS_FILE}")
    if verify and card.weights_sha256 and file_sha256(weights) != card.weights_sha256:
        raise ModelFileError(f"{weights} does not match its card (sha256 differs): the file is corrupt or was replaced")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"cannot read {weights}: {exc}") from exc
    cfg = card.model_config
    try:
        model = FishNet(cfg, len(card.classes))
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: weights do not fit the architecture in its card ({exc})") from exc
    freeze(model, len(model.backbone), cfg.train_frozen_bn)
    model.eval()
    return model, card


def list_models(root: str | os.PathLike) -> list[tuple[Path, ModelCard | None, str]]:
    """Every model folder under root with its card, or None and the reason it cannot be read."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            out.append((entry, read_card(entry), ""))
        except ModelFileError as exc:
            out.append((entry, None, str(exc)))
    return out


def model_archive(model_dir: str | os.PathLike) -> bytes:
    """A model folder as a .zip (one top-level folder), for download and sharing."""
    path = Path(model_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in MODEL_FILES:
            if (path / name).is_file():
                z.write(path / name, f"{path.name}/{name}")
    return buf.getvalue()


def model_checksum(model_dir: str | os.PathLike) -> str:
    """The sha256 of a model's card.json: which version of the model gave an answer (the card names its weights'
    sha256, so a new card means a new version)."""
    return file_sha256(Path(model_dir) / CARD_FILE)


def delete_model(model_dir: str | os.PathLike) -> None:
    """Remove a saved model folder; refuses anything that is not a fishcore model, and the bundled one."""
    path = Path(model_dir)
    read_card(path)
    if path.resolve() == bundled_model_dir().resolve():
        raise ModelFileError("the bundled default model is part of the project and is not deleted")
    shutil.rmtree(path)


# --- versions: saving never replaces a model -------------------------------------------------

_VERSIONED = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


def family_of(folder_name: str) -> tuple[str, int]:
    """('kakap', 3) for 'kakap-v3'; ('kakap', 1) for 'kakap'."""
    match = _VERSIONED.match(folder_name)
    return (match["name"], int(match["version"])) if match else (folder_name, 1)


def versions(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """The saved versions of the model family out_dir belongs to, oldest first."""
    out = Path(out_dir).expanduser().resolve()
    name, _ = family_of(out.name)
    found = []
    if out.parent.is_dir():
        for entry in out.parent.iterdir():
            family, version = family_of(entry.name)
            if family == name and entry.is_dir() and (entry / CARD_FILE).is_file():
                found.append((version, entry))
    return sorted(found)


def next_version(out_dir: str | os.PathLike) -> tuple[Path, Path | None]:
    """Where a model asked to be saved as out_dir goes, and the version it follows (None for a first).

    out_dir itself while nothing is there; else '<name>-v<N+1>' beside it, N the family's newest version.
    """
    out = Path(out_dir).expanduser().resolve()
    existing = versions(out)
    if not existing and not out.exists():
        return out, None
    name, _ = family_of(out.name)
    newest = existing[-1][0] if existing else 1
    candidate = newest + 1
    while (out.parent / f"{name}-v{candidate}").exists():
        candidate += 1
    return out.parent / f"{name}-v{candidate}", existing[-1][1] if existing else None


def lineage(card: ModelCard, folder: Path, parent: Path | None) -> dict[str, Any]:
    """The card's lineage entry: its family and version, the version it follows, and what changed."""
    name, version = family_of(folder.name)
    entry: dict[str, Any] = {"name": name, "version": version, "parent": None, "classes_added": [], "classes_removed": []}
    if parent is not None:
        try:
            before = read_card(parent).classes
        except ModelFileError:
            before = []
        entry["parent"] = parent.name
        entry["classes_added"] = [c for c in card.classes if c not in before]
        entry["classes_removed"] = [c for c in before if c not in card.classes]
    entry["dataset_fingerprint"] = card.dataset.get("fingerprint")
    return entry


def save_version(model: FishNet, card: ModelCard, out_dir: str | os.PathLike, extra_files: dict[str, Path] | None = None) -> Path:
    """Save as out_dir, or as the next version beside it when out_dir holds a model: nothing is replaced."""
    for _ in range(100):  # another process may take a version folder between choosing and saving
        folder, parent = next_version(out_dir)
        card.lineage = lineage(card, folder, parent)
        try:
            return save_model(model, card, folder, extra_files)
        except ModelFileError:
            if not folder.exists():
                raise
    raise ModelFileError(f"could not find a free version folder beside {out_dir}")
