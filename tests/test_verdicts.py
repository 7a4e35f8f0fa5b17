"""Verdicts: "confident", "uncertain" (a species the model does not know, or too close to call) and "not_a_fish"."""

import json
import shutil

import numpy as np
import pytest
import torch

from fishcore.cli import main
from fishcore.config import DataConfig, TrainConfig
from fishcore.errors import ModelFileError
from fishcore.inference.openset import (
    CONFIDENT,
    FISH_THRESHOLD_CAP,
    KNOWN,
    LOW_CONFIDENCE,
    NOT_A_FISH,
    NOT_FISH_LIKE,
    UNCERTAIN,
    UNFAMILIAR,
    OpenSet,
    Scores,
    fit_openset,
    judge,
    reference_indices,
)
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.store.jsonfile import write_json
from fishcore.store.model_files import read_card
from fishcore.training.pipeline import train_folder
from fishcore.training.run import RunOptions, TrainingRun

from conftest import F4K, REPO, SHARED_DATA, lsfd_subset, require_shared

NONFISH = SHARED_DATA / "nonfish"


def _unit(rows):
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_judge_gives_each_verdict_for_its_reason():
    profile = OpenSet(_unit([[1, 0, 0]]).astype(np.float16), distance_threshold=0.1, fish_threshold=0.01)
    assert judge(0.9, 0.05, 0.5, 0.6, profile) == (CONFIDENT, KNOWN)
    assert judge(0.5, 0.05, 0.5, 0.6, profile) == (UNCERTAIN, LOW_CONFIDENCE)
    assert judge(0.99, 0.3, 0.5, 0.6, profile) == (UNCERTAIN, UNFAMILIAR)  # confident but unlike any training photo
    assert judge(0.99, 0.3, 0.001, 0.6, profile) == (NOT_A_FISH, NOT_FISH_LIKE)
    assert judge(0.99, 0.3, None, 0.6, profile) == (UNCERTAIN, UNFAMILIAR)  # no fish signal: never "not a fish"
    assert judge(0.99, None, None, 0.6, None) == (CONFIDENT, KNOWN)  # an older model: the confidence alone
    assert judge(0.4, None, None, 0.6, None) == (UNCERTAIN, LOW_CONFIDENCE)


def test_fit_openset_uses_the_farthest_correct_validation_photo_and_caps_the_fish_threshold():
    ref = Scores(torch.zeros(2, 2), _unit([[1, 0, 0], [0, 1, 0]]), np.array([0.9, 0.8], dtype=np.float32))
    val_features = _unit([[1, 0.1, 0], [0.2, 1, 0], [0, 0, 1]])  # the last is far and misclassified
    val = Scores(torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]), val_features, np.array([0.5, 0.7, 0.6]))
    profile = fit_openset(ref, val, [0, 1, 1])
    near = profile.distances(val_features[:2]).max()
    assert near < profile.distance_threshold < profile.distances(val_features[2:])[0]
    assert profile.fish_threshold == FISH_THRESHOLD_CAP
    # Murky underwater photos get little ImageNet fish mass: the model's own kind of photo is never "not a fish".
    murky_ref = Scores(ref.logits, ref.features, np.array([0.0002, 0.0003], dtype=np.float32))
    murky_val = Scores(torch.tensor([[2.0, 0.0]]), val_features[:1], np.array([0.0001]))
    assert fit_openset(murky_ref, murky_val, [0]).fish_threshold < 0.0002


def test_reference_indices_take_at_most_n_per_class_reproducibly():
    targets = [0] * 50 + [1] * 5
    chosen = reference_indices(targets, per_class=10)
    assert len(chosen) == 15 and chosen == reference_indices(targets, per_class=10)
    assert sum(targets[i] == 1 for i in chosen) == 5


@pytest.fixture(scope="module")
def lsfd_model(tmp_path_factory):
    """An instant-mode model of three LSFD species, trained the product's way (thresholds fitted at training)."""
    tmp = tmp_path_factory.mktemp("verdicts")
    data = lsfd_subset(tmp / "lsfd", per_class=40)
    options = RunOptions(out_dir=str(tmp / "m"), cache_dir=str(tmp / "c"))
    outcome = train_folder(data, TrainingRun(DataConfig(), ModelConfig(), TrainConfig(mode="instant"), options))
    return outcome


@pytest.mark.slow
def test_a_trained_model_names_its_species_and_refuses_everyday_photos_and_other_species(lsfd_model):
    require_shared(NONFISH)
    require_shared(F4K)
    card = lsfd_model.card
    assert card.openset["reference_photos"] > 0 and (lsfd_model.model_dir / card.openset["reference_file"]).is_file()
    predictor = Predictor.load(lsfd_model.model_dir)
    root = card.data_root
    test = predictor.predict([root / r["file"] for r in lsfd_model.test_report.rows], top_k=1)
    correct = [p for p, r in zip(test, lsfd_model.test_report.rows, strict=True) if p.label == r["true"]]
    assert sum(p.verdict == CONFIDENT for p in correct) >= 0.9 * len(correct)
    everyday = predictor.predict(sorted(NONFISH.iterdir())[::10], top_k=1)  # 30 photos: a dog, a phone, ...
    assert sum(p.verdict != CONFIDENT for p in everyday) >= 0.9 * len(everyday)
    assert sum(p.verdict == NOT_A_FISH for p in everyday) >= 0.8 * len(everyday)
    reef = predictor.predict([p for d in sorted(F4K.iterdir()) for p in sorted(d.iterdir())[:8]], top_k=1)
    assert sum(p.verdict != CONFIDENT for p in reef) >= 0.7 * len(reef)
    assert all(p.reason for p in everyday + reef + test)


@pytest.mark.slow
def test_predict_json_reports_verdict_reason_and_signals(lsfd_model, tmp_path):
    import subprocess
    import sys

    dog = next(p for p in sorted(require_shared(NONFISH).iterdir()) if "retriever" in p.name or "terrier" in p.name)
    proc = subprocess.run(
        [sys.executable, "-m", "fishcore", "predict", str(lsfd_model.model_dir), str(dog), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["verdict"] in (UNCERTAIN, NOT_A_FISH) and row["reason"] in (UNFAMILIAR, NOT_FISH_LIKE)
    assert row["distance"] > read_card(lsfd_model.model_dir).openset["distance_threshold"]
    assert 0.0 <= row["fish_likeness"] <= 1.0


@pytest.mark.slow
def test_a_model_without_a_profile_falls_back_to_confidence_and_a_damaged_one_is_refused(lsfd_model, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(lsfd_model.model_dir, old)
    card = read_card(old)
    card.openset = {}
    write_json(old / "card.json", card.to_dict())
    (old / "reference.npy").unlink()
    predictor = Predictor.load(old)
    assert predictor.openset is None
    [p] = predictor.predict([sorted(require_shared(NONFISH).iterdir())[0]], top_k=1)
    assert p.verdict in (CONFIDENT, UNCERTAIN) and p.distance is None

    # `fishcore verdicts MODEL` gives it a profile again, from the photos named in its card.
    assert main(["verdicts", str(old), "--quiet"]) == 0
    refit = read_card(old).openset
    assert refit["distance_threshold"] == pytest.approx(lsfd_model.card.openset["distance_threshold"], rel=1e-3)
    assert Predictor.load(old).openset is not None

    damaged = tmp_path / "damaged"
    shutil.copytree(lsfd_model.model_dir, damaged)
    (damaged / "reference.npy").write_bytes(b"not an array")
    with pytest.raises(ModelFileError, match="damaged"):
        Predictor.load(damaged)


def test_several_shots_of_one_fish_combine_into_one_verdict():
    """Real LSFD fish photographed several ways (the set's own flipped/rotated views, found by perceptual hash)."""
    from collections import Counter

    from fishcore.config import DataConfig
    from fishcore.data.scan import scan
    from fishcore.data.split import group_items
    from fishcore.store.model_files import bundled_model_dir

    from conftest import LSFD, require_shared
    from test_cli import run_cli

    result = scan(require_shared(LSFD))
    groups = group_items(result.items, DataConfig())
    sizes = Counter(groups)
    fish = [g for g, n in sizes.items() if n >= 3][:6]  # six fish with at least three views each
    assert len(fish) == 6
    predictor = Predictor.load(bundled_model_dir())
    for g in fish:
        views = [result.root / item.path for item, gi in zip(result.items, groups, strict=True) if gi == g][:3]
        label = views[0].parent.name
        together, singles = predictor.predict_together([str(v) for v in views])
        assert len(singles) == 3 and together.label == label and together.verdict == "confident"
        # Views that agree strengthen each other: the combined answer is at least as sure as the weakest view.
        own = [dict(s.top).get(label, 0.0) for s in singles]
        assert together.confidence >= min(own) - 1e-6
    views = [str(result.root / item.path) for item, gi in zip(result.items, groups, strict=True) if gi == fish[0]][:2]
    data = json.loads(run_cli("predict", "default", *views, "--together", "--json").stdout)
    assert data["together"]["file"] == "2 photos together" and len(data["photos"]) == 2
