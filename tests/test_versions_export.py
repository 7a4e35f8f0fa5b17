"""Model versions (saving never replaces), export to ONNX and zip, and importing a model zip."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_storage_eval_predict import CFG, _card

from fishcore.errors import ModelFileError
from fishcore.inference.engine import Engine
from fishcore.inference.package import export_onnx
from fishcore.inference.predict import Predictor
from fishcore.models.net import build_model
from fishcore.models.onnx_export import to_onnx
from fishcore.store.export import export_zip, import_model_zip
from fishcore.store.model_files import (
    CARD_FILE,
    WEIGHTS_FILE,
    family_of,
    load_model,
    next_version,
    read_card,
    save_version,
    versions,
)

from conftest import class_image


def _model(seed: int = 0):
    torch.manual_seed(seed)
    model, _ = build_model(CFG, 3)
    return model.eval()


def test_saving_under_a_taken_name_makes_the_next_version_with_its_lineage(tmp_path):
    first = save_version(_model(0), _card(dataset={"fingerprint": "f1"}), tmp_path / "kakap")
    second = save_version(_model(1), _card(classes=["a", "b", "d"], dataset={"fingerprint": "f2"}), tmp_path / "kakap")
    third = save_version(_model(2), _card(), tmp_path / "kakap-v2")  # naming any version continues the family
    assert [p.name for p in (first, second, third)] == ["kakap", "kakap-v2", "kakap-v3"]
    assert read_card(first).lineage == {
        "name": "kakap",
        "version": 1,
        "parent": None,
        "classes_added": [],
        "classes_removed": [],
        "dataset_fingerprint": "f1",
    }
    lineage = read_card(second).lineage
    assert lineage["parent"] == "kakap" and lineage["version"] == 2
    assert lineage["classes_added"] == ["d"] and lineage["classes_removed"] == ["c"]
    assert read_card(third).lineage["parent"] == "kakap-v2"
    assert [v for v, _ in versions(tmp_path / "kakap")] == [1, 2, 3]
    # the first version is untouched: same weights as when it was saved
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(load_model(first)[0](x), _model(0)(x), atol=1e-6)
    assert family_of("a-v-v12") == ("a-v", 12) and family_of("model-2026") == ("model-2026", 1)
    assert next_version(tmp_path / "new")[1] is None


def test_onnx_export_agrees_with_the_predictor(tmp_path):
    card = _card(temperature=1.7, threshold=0.73)
    card.promise = {"precision": 0.95, "level": 0.9, "backed": True, "photos": 200, "curve": [[0.0, 200, 150]]}
    card.prediction_sets = {"coverage": 0.9, "quantile": 0.4, "photos": 200}
    folder = save_version(_model(), card, tmp_path / "m")
    onnx_file, labels, prep = export_onnx(folder, tmp_path / "out" / "fish")
    assert onnx_file.name == "fish.onnx" and labels.read_text().split() == ["a", "b", "c"]
    spec = json.loads(prep.read_text())
    assert spec["input"]["image_size"] == 32 and spec["input"]["mean"] == [0.5] * 3 and spec["temperature"] == 1.7
    assert spec["threshold"] == 0.73 and spec["promise"] == {"precision": 0.95, "level": 0.9, "backed": True, "photos": 200}
    assert spec["prediction_sets"] == {"coverage": 0.9, "quantile": 0.4}
    predictor = Predictor.load(folder)
    assert predictor.promise is None  # an incomplete promise (a card edited by hand) is read as none
    images = [class_image(i % 3, seed=i, size=60) for i in range(5)]
    expected = predictor.probabilities(images)
    x = torch.stack([predictor.preprocess(im) for im in images]).numpy()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x})[0]
    assert np.allclose(got, expected, atol=1e-4) and np.allclose(got.sum(axis=1), 1, atol=1e-5)


def test_an_exported_network_is_kept_in_the_cache_and_a_changed_one_is_exported_anew(tmp_path, monkeypatch):
    import fishcore.models.onnx_export as onnx_export
    from fishcore.inference.package import ProbabilityNet

    exports = []
    real = onnx_export._export
    monkeypatch.setattr(onnx_export, "_export", lambda *a: exports.append(a) or real(*a))
    cache = tmp_path / "onnx"
    model = _model(0)
    first = to_onnx(model, 32, cache=cache)
    assert to_onnx(model, 32, cache=cache) == first and len(exports) == 1  # read back, not traced again
    assert to_onnx(_model(0), 32, cache=cache) == first and len(exports) == 1  # another process, the same network
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3  # one weight moved: another graph
    assert to_onnx(model, 32, cache=cache) != first and len(exports) == 2
    assert to_onnx(model, 32, names=("image", "p"), cache=cache) != first and len(exports) == 3  # other names
    hot, cold = ProbabilityNet(_model(0), 1.0), ProbabilityNet(_model(0), 2.0)  # a setting outside the weights
    assert to_onnx(hot, 32, cache=cache) != to_onnx(cold, 32, cache=cache) and len(exports) == 5
    for path in cache.glob("*.onnx"):
        os.utime(path, (1, 1))  # long unused
    to_onnx(hot, 32, cache=cache)  # used now
    onnx_export._prune(cache, keep=2)
    kept = list(cache.glob("*.onnx"))
    assert len(kept) == 2 and to_onnx(hot, 32, cache=cache) in [p.read_bytes() for p in kept]
    # The engine runs what the cache holds: the same numbers as torch.
    engine = Engine(model, 32, "onnx", cache=cache)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(engine(x), model.eval()(x), atol=1e-4)


def test_a_model_zip_imports_elsewhere_as_a_new_model_and_never_replaces(tmp_path):
    folder = save_version(_model(), _card(), tmp_path / "here" / "kakap")
    archive = export_zip(folder, tmp_path / "kakap.zip")
    elsewhere = tmp_path / "there"
    a = import_model_zip(archive, elsewhere)
    b = import_model_zip(archive.read_bytes(), elsewhere)
    assert [a.name, b.name] == ["kakap", "kakap-v2"]
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(load_model(a)[0](x), load_model(folder)[0](x), atol=1e-6)


def test_a_tampered_or_foreign_model_zip_is_refused_and_leaves_nothing(tmp_path):
    folder = save_version(_model(), _card(), tmp_path / "m")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/" + CARD_FILE, (folder / CARD_FILE).read_text())
        z.writestr("m/" + WEIGHTS_FILE, b"not the weights")
        z.writestr("../evil.txt", b"x")
    with pytest.raises(ModelFileError, match="does not match its card"):
        import_model_zip(buf.getvalue(), tmp_path / "models")
    with pytest.raises(ModelFileError, match=r"needs card\.json"):
        import_model_zip(_zip_of({"photo.png": b"x"}), tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_model_exported_and_imported_back_has_the_same_files_answers_threshold_and_sets(tmp_path):
    """The bundled model (with its held-out logits and verdict profile) through a zip and back: every file the
    same bytes, and the same predictions, verdicts, threshold and prediction sets; its held-out logits choose the
    same threshold and sets again."""
    import copy

    from fishcore.store.model_files import HELDOUT_FILE, MODEL_FILES, bundled_model_dir
    from fishcore.store.samples import sample_photos
    from fishcore.training.heldout import HeldOut, settle

    original = bundled_model_dir()
    kept = sorted(name for name in MODEL_FILES if (original / name).is_file())
    assert HELDOUT_FILE in kept
    back = import_model_zip(export_zip(original, tmp_path / "lsfd.zip"), tmp_path / "models")
    assert sorted(p.name for p in back.iterdir()) == kept
    for name in kept:
        assert (back / name).read_bytes() == (original / name).read_bytes(), name
    photos = [s.path for s in sample_photos()][:12]
    before, after = Predictor.load(original).predict(photos), Predictor.load(back).predict(photos)
    for a, b in zip(before, after, strict=True):
        assert (a.label, a.verdict, a.reason, a.candidates) == (b.label, b.verdict, b.reason, b.candidates)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-6)
    card = read_card(back)
    again = copy.deepcopy(card)
    settle(again, HeldOut.load(back / HELDOUT_FILE))
    assert again.threshold == pytest.approx(card.threshold) and again.temperature == pytest.approx(card.temperature)
    assert again.prediction_sets == pytest.approx(card.prediction_sets)
