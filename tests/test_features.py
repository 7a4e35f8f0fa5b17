import shutil

import pytest
import torch

from fishcore.config import AugmentConfig, DataConfig, TrainConfig
from fishcore.data.augment import build_transforms, transform_stages
from fishcore.data.images import load_image
from fishcore.data.scan import scan
from fishcore.data.split import resolve
from fishcore.inference.engine import Engine
from fishcore.inference.evaluate import evaluate_files
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.models.net import build_model
from fishcore.runtime import resolve_precision
from fishcore.store.model_files import read_card
from fishcore.training.features import FeatureStore
from fishcore.training.pipeline import train_folder
from fishcore.training.run import RunOptions, TrainingRun

from conftest import class_image, make_image_folder

CFG = ModelConfig(image_size=64, head_width=16)


def _samples(root):
    result = scan(root)
    return [(str(root / i.path), i.sha256) for i in result.items]


def test_features_are_the_trunk_output_cached_and_only_new_views_computed(tmp_path):
    data = make_image_folder(tmp_path / "d", ["a", "b"], 4)
    model, sha = build_model(CFG, 2)
    store = FeatureStore(tmp_path / "cache", model, CFG, sha, engine="torch")
    samples = _samples(data)
    feats = store.features(samples, AugmentConfig(), k=2)
    assert feats.shape[:2] == (8, 3) and feats.dtype == torch.float16 and store.computed == 24
    # View 0 is the clean view through the frozen stages.
    x = build_transforms(None, False, 64)(load_image(samples[0][0], min_size=64))
    with torch.inference_mode():
        ref = model.trunk(x[None])[0]
    assert torch.allclose(feats[0, 0].float(), ref, atol=2e-2, rtol=1e-2)
    # Same request again: everything from disk, identical.
    again = FeatureStore(tmp_path / "cache", build_model(CFG, 2)[0], CFG, sha, engine="torch")
    assert torch.equal(again.features(samples, AugmentConfig(), k=2), feats) and again.computed == 0
    # A new photo: only its views are computed.
    class_image(0, 999, 48).save(data / "a" / "new.png")
    assert again.features(_samples(data), AugmentConfig(), k=2).shape[0] == 9 and again.computed == 3
    # Another augmentation config or K: new augmented views; clean views are shared.
    again.computed = 0
    again.features(_samples(data), AugmentConfig(rotation=5), k=2)
    assert again.computed == 27
    again.computed = 0
    again.features(_samples(data), None, k=0)
    assert again.computed == 9
    # Another freeze point is another trunk: nothing is reused.
    other_cfg = ModelConfig(image_size=64, head_width=16, freeze_until=15)
    other = FeatureStore(tmp_path / "cache", build_model(other_cfg, 2)[0], other_cfg, sha, engine="torch")
    other.features(samples, None, 0)
    assert other.computed == 8


def test_cached_views_are_the_training_transform_with_a_fixed_seed_per_view(tmp_path):
    # Fast mode decodes and resizes once per photo, then augments; that must equal the training
    # transform (what full mode and the Augmentation lab run) drawn with the view's seed.
    data = make_image_folder(tmp_path / "d", ["a"], 2)
    model, sha = build_model(CFG, 2)
    store = FeatureStore(tmp_path / "cache", model, CFG, sha, engine="torch")
    path, digest = _samples(data)[0]
    views = store._views(path, digest, transform_stages(AugmentConfig(), True, 64), 3)
    image = load_image(path, min_size=64)
    finish = transform_stages(None, False, 64).finish
    assert torch.equal(finish(views[0]), build_transforms(None, False, 64)(image))
    for j in range(3):
        torch.manual_seed(int(digest[:12], 16) + j)
        assert torch.allclose(finish(views[1 + j]), build_transforms(AugmentConfig(), True, 64)(image), atol=1e-6)
    assert not torch.equal(views[1], views[2])


def test_views_are_reproducible_when_photos_are_prepared_in_parallel(tmp_path):
    data = make_image_folder(tmp_path / "d", ["a", "b"], 12)
    model, sha = build_model(CFG, 2)
    samples = _samples(data)
    runs = [
        FeatureStore(tmp_path / f"cache{i}", model, CFG, sha, engine="torch").features(samples, AugmentConfig(), k=3)
        for i in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_onnxruntime_and_torch_agree_to_1e_4():
    model, _ = build_model(ModelConfig(), 5)
    model.eval()
    x = torch.randn(3, 3, 224, 224)
    with torch.inference_mode():
        ref = model(x)
    onnx = Engine(model, 224, "onnx")
    assert onnx.name == "onnxruntime"
    assert (onnx(x) - ref).abs().max() < 1e-4
    assert (Engine(model, 224, "torch")(x) - ref).abs().max() < 1e-4


def test_feature_trunk_takes_uint8_and_matches_the_normalised_float_pipeline(tmp_path):
    model, sha = build_model(ModelConfig(), 5)
    pixels = torch.randint(0, 256, (4, 3, 224, 224), dtype=torch.uint8)
    with torch.inference_mode():
        ref = model.eval().trunk(transform_stages(None, False, 224).finish(pixels))
    for engine in ("onnx", "torch"):
        store = FeatureStore(tmp_path, model, ModelConfig(), sha, engine=engine)
        assert (store.engine(pixels) - ref).abs().max() < 1e-4


def _run(out, model_cfg, train_cfg, cache, *listeners) -> TrainingRun:
    """A run of train_folder saving to ``out`` with its caches under ``cache``."""
    options = RunOptions(out_dir=str(out), cache_dir=str(cache))
    return TrainingRun(DataConfig(), model_cfg, train_cfg, options, listeners=listeners)


def test_fast_mode_training_saves_its_mode_and_reuses_the_cache(tmp_path):
    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 12)
    cfg = TrainConfig(epochs=2, batch_size=8, val_every=0, views=2, mode="fast")
    first = train_folder(data, _run(tmp_path / "m1", CFG, cfg, tmp_path / "cache"))
    t = read_card(first.model_dir).training
    assert t.mode == "fast" and t.views == 2 and t.views_computed == t.views_total > 0
    assert t.precision == resolve_precision("auto", torch.device("cpu"))
    # The card's test numbers (from cached float16 features) are what the real Predictor gives.
    card = read_card(first.model_dir)
    assert card.metrics["test"]["computed_on"].startswith("cached")
    direct = evaluate_files(Predictor.load(first.model_dir), resolve(data, card.split["test"]), root=data)
    for a, b in zip(first.test_report.rows, direct.rows, strict=True):
        assert a["file"] == b["file"] and a["predicted"] == b["predicted"]
        assert abs(a["confidence"] - b["confidence"]) < 5e-3
    second = train_folder(data, _run(tmp_path / "m2", CFG, cfg, tmp_path / "cache"))
    assert read_card(second.model_dir).training.views_computed == 0
    full = train_folder(data, _run(tmp_path / "m3", CFG, TrainConfig(epochs=1, batch_size=8, mode="full"), tmp_path / "cache"))
    assert read_card(full.model_dir).training.mode == "full"
    shutil.rmtree(tmp_path / "cache")


def test_instant_mode_fits_a_linear_head_that_predict_uses_like_any_model(tmp_path):
    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 30)
    model_cfg = ModelConfig(image_size=64)
    outcome = train_folder(data, _run(tmp_path / "m", model_cfg, TrainConfig(mode="instant"), tmp_path / "c"))
    card = read_card(outcome.model_dir)
    assert card.training.mode == "instant" and card.config["model"]["head"] == "linear"
    # Coloured discs at 64 px: measured 0.76-0.83 test macro-F1 here; chance is 0.33.
    assert card.config["model"]["freeze_until"] == 19 and card.metrics["test"]["macro_f1"] >= 0.6
    # The saved model, rebuilt from its card, gives the card's test predictions from the photos themselves.
    direct = evaluate_files(Predictor.load(outcome.model_dir), resolve(data, card.split["test"]), root=data)
    assert [r["predicted"] for r in direct.rows] == [r["predicted"] for r in outcome.test_report.rows]
    assert direct.accuracy == pytest.approx(outcome.test_report.accuracy)


@pytest.mark.parametrize("phase", ["scanning", "caching_features", "training", "calibrating", "evaluating"])
def test_a_stop_request_is_honoured_in_every_phase(tmp_path, phase):
    import time

    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 12)
    asked = {}

    def on_event(e):
        reached = e.phase == phase if e.name == "phase" else phase == "training" and e.name == "batch_end"
        if reached and not run.stop_requested:
            run.request_stop()
            asked["at"] = time.perf_counter()

    mode = "fast" if phase == "caching_features" else "full"  # full mode reads the test photos from files
    # Training is stopped at its first batch in the "training" case; for the later phases 2 epochs suffice.
    cfg = TrainConfig(epochs=50 if phase == "training" else 2, batch_size=4, val_every=0, patience=1000, mode=mode)
    run = _run(tmp_path / "m", CFG, cfg, tmp_path / "c", on_event)
    outcome = train_folder(data, run)
    assert "at" in asked, f"phase {phase} never reported"
    assert time.perf_counter() - asked["at"] < 5  # generous: seconds on a loaded 2-core machine, not minutes
    assert outcome.result.stop_reason == "user"
    trained = phase in ("training", "calibrating", "evaluating")
    assert (outcome.model_dir is not None) == trained  # nothing is saved before training; the best so far after
    if phase in ("calibrating", "evaluating"):
        assert "test" not in read_card(outcome.model_dir).metrics


def test_auto_mode_compares_candidates_on_validation_within_the_budget(tmp_path, monkeypatch):
    import time

    import fishcore.training.strategies as strategies

    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 12)
    events = []
    # Instant mode at the "nothing left to learn" score ends the search there.
    monkeypatch.setattr(strategies, "NOTHING_LEFT", 0.0)
    easy = train_folder(data, _run(tmp_path / "m1", CFG, TrainConfig(), tmp_path / "c", events.append))
    t = read_card(easy.model_dir).training
    assert t.mode == "auto" and t.recipe == "instant" and [c["name"] for c in t.candidates] == ["instant"]
    assert t.candidates[0]["val_macro_f1"] >= strategies.NOTHING_LEFT
    assert [e.candidate for e in events if e.name == "candidate"] == ["instant"]
    assert {e.candidate for e in events if e.name in ("train_start", "validation")} == {"instant"}
    # When instant mode leaves something to learn, the deeper fast-mode candidate runs within the budget and
    # the better validation score wins; the test split plays no part in the choice.
    monkeypatch.setattr(strategies, "NOTHING_LEFT", 1.01)
    started = time.monotonic()
    both = train_folder(data, _run(tmp_path / "m2", CFG, TrainConfig(budget=20), tmp_path / "c"))
    assert time.monotonic() - started < 20 + 30  # the budget bounds the search; evaluation and saving follow
    t = read_card(both.model_dir).training
    # The stronger backbone (frozen, at its own size) is tried too: its features fit in half the budget.
    assert [c["name"] for c in t.candidates] == ["instant", "instant, efficientnet_lite2", "fast, stages 10+ trained"]
    assert [c["mode"] for c in t.candidates] == ["instant", "instant", "fast"] and t.candidates[2]["freeze_until"] == 10
    best = max(t.candidates, key=lambda c: (c["val_macro_f1"], -c["val_loss"]))
    assert t.recipe == best["name"]
    card = read_card(both.model_dir)
    assert card.config["model"]["freeze_until"] == best["freeze_until"]
    lite2 = best["name"].endswith("efficientnet_lite2")
    assert (card.backbone, card.image_size) == (("efficientnet_lite2", 260) if lite2 else ("mobilenet_v2", CFG.image_size))
