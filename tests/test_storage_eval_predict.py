import json

import numpy as np
import pytest
import torch

from fishcore.errors import ModelFileError
from fishcore.inference.evaluate import report_from_probabilities
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.models.net import build_model
from fishcore.store.model_files import CARD_FILE, WEIGHTS_FILE, ModelCard, list_models, load_model, read_card, save_model

from conftest import class_image

CFG = ModelConfig(pretrained=False, image_size=32, head_width=16)


def _card(**kw):
    base = dict(
        classes=["a", "b", "c"],
        image_size=32,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        backbone="mobilenet_v2",
        pretrained=False,
        config={"model": {**CFG.__dict__}},
    )
    return ModelCard(**{**base, **kw})


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model, _ = build_model(CFG, 3)
    model.eval()
    return model, save_model(model, _card(), tmp_path / "m")


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    loaded, card = load_model(path)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x), loaded(x), atol=1e-6)
    assert card.classes == ["a", "b", "c"] and card.weights_sha256
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())  # no temp folders left


def test_saving_never_replaces_an_existing_model(saved, tmp_path):
    from fishcore.errors import ModelFileError
    from fishcore.store.model_files import save_version

    model, path = saved
    with pytest.raises(ModelFileError, match="already exists"):
        save_model(model, _card(classes=["x", "y", "z"]), path)
    assert read_card(path).classes == ["a", "b", "c"] and [p.name for p in tmp_path.iterdir()] == ["m"]
    # save_version, what training uses, puts the new one beside it instead.
    beside = save_version(model, _card(classes=["x", "y", "z"]), path)
    assert beside.name == "m-v2" and read_card(beside).classes == ["x", "y", "z"] and read_card(path).classes == ["a", "b", "c"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / CARD_FILE).write_text("{not json"), "corrupt"),
        (lambda p: (p / CARD_FILE).write_text(json.dumps({"hello": 1})), "not a fishcore model"),
        (
            lambda p: (p / CARD_FILE).write_text(json.dumps({**json.loads((p / CARD_FILE).read_text()), "format_version": 99})),
            "newer",
        ),
        (lambda p: (p / WEIGHTS_FILE).write_bytes(b"garbage"), "does not match its card"),
        (lambda p: (p / CARD_FILE).unlink(), "no card.json"),
    ],
)
def test_damaged_or_foreign_models_give_clear_errors(saved, damage, message):
    _, path = saved
    damage(path)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_weights_for_another_architecture_are_refused(saved):
    _, path = saved
    card = json.loads((path / CARD_FILE).read_text())
    card["classes"] = ["a", "b"]
    (path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(path, verify=False)


def test_list_models_shows_broken_ones_with_a_reason(saved, tmp_path):
    (tmp_path / "junk").mkdir()
    rows = {p.name: (card, why) for p, card, why in list_models(tmp_path)}
    assert rows["m"][0] is not None and rows["junk"][0] is None and "no card.json" in rows["junk"][1]


def test_predictor_topk_probabilities_and_uncertain_verdict(saved, tmp_path):
    _, path = saved
    predictor = Predictor.load(path)
    f = tmp_path / "fish.png"
    class_image(0, 1, 40).save(f)
    [pred] = predictor.predict([str(f)], top_k=2, threshold=0.999)
    assert len(pred.top) == 2 and pred.top[0][1] >= pred.top[1][1]
    assert pred.verdict == "uncertain"
    probs = predictor.probabilities([class_image(0, 1, 40), class_image(1, 2, 40)])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    as_json = json.loads(json.dumps(pred.to_dict()))
    assert set(as_json) == {"file", "top", "verdict", "reason", "distance", "fish_likeness", "set", "set_coverage"}
    assert set(as_json["top"][0]) == {"label", "prob"} and as_json["verdict"] == "uncertain"
    # Bytes in, same answer as the file.
    [from_bytes] = predictor.predict([f.read_bytes()], top_k=2, threshold=0.999)
    assert from_bytes.top == pred.top


def test_report_numbers_match_a_hand_computation():
    classes = ["a", "b", "c"]
    targets = [0, 0, 1, 1, 2, 2]
    probs = np.array([[0.9, 0.1, 0], [0.4, 0.6, 0], [0, 1, 0], [0.2, 0.7, 0.1], [0, 0, 1], [0.5, 0.2, 0.3]])
    r = report_from_probabilities(classes, targets, probs, [f"f{i}" for i in range(6)])
    assert r.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.per_class["b"]["precision"] == pytest.approx(2 / 3)
    assert r.per_class["a"]["recall"] == pytest.approx(0.5)
    assert r.macro_f1 == pytest.approx(np.mean([0.5, 0.8, 2 / 3]))
    onehot = np.eye(3)[targets]
    assert r.mse == pytest.approx(((probs - onehot) ** 2).mean())
    assert r.rmse == pytest.approx(np.sqrt(r.mse)) and r.mae == pytest.approx(np.abs(probs - onehot).mean())
    assert r.top_k_accuracy["3"] == 1.0
    mistakes = r.cell("c", "a")
    assert [m["file"] for m in mistakes] == ["f5"]
    assert json.loads(json.dumps(r.to_dict()))["confusion_matrix"] == r.confusion_matrix


def _version_1_card(current: dict) -> dict:
    """A card as fishcore wrote it before format version 2 (the bundled model's card of 2026-11-28)."""
    training = {
        k: current["training"][k]
        for k in ("seconds", "epochs", "iterations", "stop_reason", "best_val_loss", "best_iteration", "device")
    }
    config = {**current["config"], "model": {k: v for k, v in current["config"]["model"].items() if k != "head"}}
    old = {k: v for k, v in current.items() if k not in ("openset", "lineage")}
    return {**old, "format_version": 1, "training": training, "config": config}


def test_version_1_cards_are_migrated_on_load(tmp_path):
    import shutil

    from fishcore.store.model_files import FORMAT_VERSION, ModelCard, bundled_model_dir, migrate_card

    old_model = tmp_path / "old"
    shutil.copytree(bundled_model_dir(), old_model)
    raw = _version_1_card(json.loads((bundled_model_dir() / "card.json").read_text()))
    (old_model / "card.json").write_text(json.dumps(raw))
    assert raw["format_version"] == 1 and "mode" not in raw["training"]
    card = read_card(old_model)
    assert card.format_version == FORMAT_VERSION == 3
    assert (card.training.mode, card.training.precision) == ("full", "fp32")
    assert card.training.total_seconds == raw["training"]["seconds"] and card.training.epochs == raw["training"]["epochs"]
    assert card.model_config.head == "residual"
    # A version-1 card of the fast-mode release keeps what it recorded.
    fast = {**raw, "training": {**raw["training"], "mode": "fast", "precision": "bf16", "feature_seconds": 10.0}}
    migrated = migrate_card(fast)
    assert migrated["training"]["mode"] == "fast" and migrated["training"]["precision"] == "bf16"
    assert migrated["training"]["total_seconds"] == round(raw["training"]["seconds"] + 10.0, 2)
    # Round trip: what a current card writes, it reads back unchanged.
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again.to_dict() == card.to_dict()


def test_a_version_2_card_migrates_to_one_metrics_history():
    """Card format 2 kept every training event in the card (`history`) and in metrics.jsonl. The bundled model
    was saved so (its metrics.jsonl still is); its card as format 2 wrote it, read now, has no second history,
    and metrics.jsonl gives the validation rows."""
    from fishcore.store.model_files import METRICS_FILE, bundled_model_dir, read_metrics

    events = [json.loads(line) for line in (bundled_model_dir() / METRICS_FILE).read_text().splitlines()]
    raw = read_card(bundled_model_dir()).to_dict()
    raw["training"].pop("evaluations")
    raw.update(format_version=2, history=events)  # as format 2 wrote it
    assert len(raw["history"]) == 137 and sum(e["name"] == "validation" for e in events) == 12
    card = ModelCard.from_dict(raw)
    assert card.format_version == 3 and not hasattr(card, "history") and "history" not in card.to_dict()
    validations = [row for row in raw["history"] if row["name"] == "validation"]
    assert card.training.evaluations == len(validations) == 12
    rows = read_metrics(bundled_model_dir())
    assert len(rows) == 12 and all("name" not in r and r["val_loss"] > 0 for r in rows)
    assert [r["iteration"] for r in rows] == [v["iteration"] for v in validations]
    assert min(r["val_loss"] for r in rows) == pytest.approx(card.training.best_val_loss)
