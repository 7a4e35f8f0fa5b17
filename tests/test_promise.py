"""What "confident" promises: a threshold chosen per model on held-out predictions, and prediction sets."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fishcore.config import DataConfig, TrainConfig
from fishcore.errors import ConfigError
from fishcore.inference.calibration import (
    THRESHOLD_FLOOR,
    Promise,
    SetRule,
    choose_threshold,
    conformal_quantile,
    fit_prediction_sets,
    precision_lower_bound,
)
from fishcore.inference.openset import CONFIDENT, LOW_CONFIDENCE
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.store.model_files import HELDOUT_FILE, read_card
from fishcore.training.heldout import OUT_OF_FOLD, VALIDATION, HeldOut, assign_folds
from fishcore.training.pipeline import train_folder
from fishcore.training.run import RunOptions, TrainingRun

from conftest import F4K, REPO, require_shared

F4K_TRACK = r"fish_(\d+)_"


def _draw(rng, n):
    """Answers whose confidence is honest: each is right with probability equal to its confidence."""
    confidence = np.clip(rng.beta(6, 1, n), 0.2, 1.0)  # most answers sure, as a trained model's are
    return confidence, rng.uniform(size=n) < confidence


def test_the_lower_bound_is_clopper_pearson():
    assert precision_lower_bound(50, 50, 0.9) == pytest.approx(0.1 ** (1 / 50))  # no mistakes: (1 - level)^(1/n)
    assert precision_lower_bound(0, 10, 0.9) == 0.0
    assert precision_lower_bound(95, 100, 0.9) < 0.95 < precision_lower_bound(99, 100, 0.9)


def test_a_chosen_threshold_keeps_its_promise_on_fresh_answers_of_the_same_kind():
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(40):
        promise = choose_threshold(*_draw(rng, 1000))
        assert promise.backed and promise.threshold >= THRESHOLD_FLOOR
        fresh_conf, fresh_right = _draw(rng, 4000)
        kept.append(fresh_right[fresh_conf >= promise.threshold].mean() >= 0.95)
    assert sum(kept) >= 0.85 * len(kept)  # the margin is 90 % sure; scanning every threshold costs a little


def test_without_the_margin_the_promise_breaks_more_often():
    rng = np.random.default_rng(1)
    broken = {0.0: 0, 0.9: 0}
    for _ in range(40):
        conf, right = _draw(rng, 150)
        fresh_conf, fresh_right = _draw(rng, 4000)
        for level in broken:
            t = choose_threshold(conf, right, level=level).threshold
            broken[level] += fresh_right[fresh_conf >= t].mean() < 0.95
    assert broken[0.9] < broken[0.0]


def test_too_few_held_out_photos_do_not_back_a_promise_and_say_so():
    promise = choose_threshold(np.full(12, 0.9), np.ones(12, bool))  # 12 of 12 right: 90 % sure of only 82 %
    assert not promise.backed and promise.bound < 0.95
    assert promise.threshold == THRESHOLD_FLOOR  # the plain share keeps it from the floor up: chosen, said to be unbacked
    assert promise.confident == promise.confident_right == 12


def test_the_threshold_never_drops_below_the_floor_and_the_curve_counts_answers():
    conf = np.linspace(0.2, 1.0, 500)
    promise = choose_threshold(conf, np.ones(500, bool))  # every answer right
    assert promise.threshold == THRESHOLD_FLOOR  # no held-out answer counts against any threshold from the floor up
    assert promise.at(0.0) == (500, 500)
    n, k = promise.at(0.9)
    assert n == k == int((conf >= 0.9).sum())
    again = Promise.from_card(json.loads(json.dumps(promise.card_entry())))
    assert again == promise and promise.card_entry()["coverage"] == pytest.approx(promise.confident / 500)


def test_photos_of_one_group_count_as_one_in_the_margin():
    from fishcore.inference.calibration import effective_sizes

    assert effective_sizes(np.arange(4)).tolist() == [1, 2, 3, 4]  # each photo alone
    assert effective_sizes(np.zeros(4)).tolist() == [1, 1, 1, 1]  # one video: one observation
    conf = np.linspace(1.0, 0.6, 200)
    right = np.ones(200, bool)
    alone = choose_threshold(conf, right)
    videos = choose_threshold(conf, right, groups=np.arange(200) // 20)  # ten videos of twenty frames
    assert alone.backed and not videos.backed and videos.groups == 10 and alone.groups == 200


def test_the_sequential_rule_stops_at_the_first_failure():
    conf = np.linspace(1.0, 0.6, 300)
    right = np.ones(300, bool)
    right[80] = right[81] = right[82] = False  # three mistakes in a row early on, none after
    lowest = choose_threshold(conf, right)
    sequential = choose_threshold(conf, right, sequential=True)
    assert sequential.threshold > lowest.threshold


def test_conformal_sets_cover_as_stated_and_always_hold_the_top_answer():
    rng = np.random.default_rng(2)

    def draw(n):
        logits = rng.normal(size=(n, 6)) * 2
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        targets = np.array([rng.choice(6, p=p) for p in probs])  # honest probabilities
        return probs, targets

    rule = fit_prediction_sets(*draw(500), coverage=0.9)
    probs, targets = draw(4000)
    members = [rule.members(p) for p in probs]
    covered = np.mean([t in m for t, m in zip(targets, members, strict=True)])
    assert 0.87 <= covered <= 0.94
    assert all(m[0] == int(np.argmax(p)) for m, p in zip(members, probs, strict=True))
    assert np.mean([len(m) for m in members]) < 6
    assert conformal_quantile(np.zeros(5), 0.9) == 1.0  # 5 photos cannot back 90 %: every species
    assert len(SetRule(0.9, 1.0, 5).members(probs[0])) == 6


def test_folds_keep_a_group_together_and_spread_each_class():
    targets = [0] * 30 + [1] * 30
    groups = [i // 3 for i in range(60)]  # tracks of three frames
    fold = assign_folds(targets, groups, 5, seed=0)
    for g in set(groups):
        assert len({fold[i] for i in range(60) if groups[i] == g}) == 1
    for c in (0, 1):
        sizes = np.bincount(fold[np.array(targets) == c], minlength=5)
        assert sizes.min() >= 3 and sizes.max() <= 9


def test_a_failing_refit_keeps_the_folds_done_and_a_stop_still_stops():
    from fishcore.events import StopRequested
    from fishcore.training.heldout import cross_fit
    from fishcore.training.run import TrainingRun

    targets, groups = [0, 1] * 10, list(range(20))
    calls = []

    def fit_fold(rest, held, sub):
        calls.append(len(held))
        if len(calls) == 2:
            raise ValueError("a broken refit")
        return torch.zeros(len(held), 2)

    logits, idx, done = cross_fit(TrainingRun(), targets, groups, fit_fold, budget=60, folds=5)
    assert done == 1 and len(calls) == 2 and logits.shape == (calls[0], 2) and len(idx) == calls[0]
    run = TrainingRun()
    run.request_stop()
    with pytest.raises(StopRequested):
        cross_fit(run, targets, groups, fit_fold, budget=60, folds=5)


def test_held_out_predictions_round_trip(tmp_path):
    held = HeldOut(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), [VALIDATION, VALIDATION, OUT_OF_FOLD, OUT_OF_FOLD])
    held.save(tmp_path / "h.npz")
    back = HeldOut.load(tmp_path / "h.npz")
    assert torch.equal(back.logits, held.logits) and torch.equal(back.targets, held.targets)
    assert back.kinds == held.kinds and back.count(OUT_OF_FOLD) == 2


def test_the_number_of_folds_is_checked():
    TrainConfig(held_out_folds=0)
    with pytest.raises(ConfigError, match="held_out_folds"):
        TrainConfig(held_out_folds=1)


@pytest.fixture(scope="module")
def f4k_model(tmp_path_factory):
    """An instant-mode model of the four F4K reef species, split by track: out-of-fold predictions are cheap."""
    tmp = tmp_path_factory.mktemp("promise")
    run = TrainingRun(DataConfig(group_pattern=F4K_TRACK), ModelConfig(), TrainConfig(mode="instant"),
                      RunOptions(out_dir=str(tmp / "m"), cache_dir=str(tmp / "c")))  # fmt: skip
    return train_folder(require_shared(F4K), run)


@pytest.mark.slow
def test_training_chooses_and_records_the_threshold_and_sets_from_held_out_photos(f4k_model):
    card = read_card(f4k_model.model_dir)
    p = Promise.from_card(card.promise)
    held = HeldOut.load(f4k_model.model_dir / HELDOUT_FILE)
    assert p.photos == len(held) == len(card.split["val"]) + held.count(OUT_OF_FOLD)
    assert held.count(OUT_OF_FOLD) == len(card.split["train"]) and card.promise["folds"] == 5  # every training photo
    # F4K's frames come in 121 tracks, a few of them long: the effective number of held-out answers tops out near
    # 40, where a perfect record bounds precision at about 0.95 at the 90 % level, so whether the promise is backed
    # here turns on one track's order (backed at 0.9507 with the probe whose C validation chose, not at 0.9466
    # with cross-validation's). What must hold either way: the card says which, from its own bound.
    assert p.backed == (p.bound >= p.precision) and p.bound > 0.85
    assert card.threshold == p.threshold >= THRESHOLD_FLOOR and p.confident_right / p.confident >= 0.95
    rule = SetRule.from_card(card.prediction_sets)
    assert rule.coverage == 0.9 and rule.photos == p.photos and 0 < rule.quantile <= 1
    # The held-out logits back what the card says: the same threshold comes out of them again.
    probs = torch.softmax(held.logits / card.temperature, 1).numpy()
    again = choose_threshold(probs.max(1), probs.argmax(1) == held.targets.numpy(), groups=held.groups)
    assert again.threshold == pytest.approx(p.threshold, abs=1e-5)
    # Frames of one track count as one: fewer groups than photos, and a laxer threshold if they were not.
    assert 0 < p.groups < p.photos and len(set(held.groups.tolist())) == p.groups
    alone = choose_threshold(probs.max(1), probs.argmax(1) == held.targets.numpy())
    assert alone.threshold <= p.threshold and alone.bound >= p.bound


@pytest.mark.slow
def test_predictions_carry_the_set_and_predict_json_and_the_cli_say_it(f4k_model):
    predictor = Predictor.load(f4k_model.model_dir)
    root = read_card(f4k_model.model_dir).test_root
    test = predictor.predict([root / r["file"] for r in f4k_model.test_report.rows], top_k=1)
    for p in test:
        assert p.candidates and p.candidates[0][0] == p.label and p.coverage == 0.9
    # At a threshold of 1.0 nothing is confident: every familiar answer is "not sure", with its set.
    unsure = [predictor.judged(p, 1.0) for p in test]
    assert all(p.verdict != CONFIDENT for p in unsure) and any(p.reason == LOW_CONFIDENCE for p in unsure)
    photo = str(root / f4k_model.test_report.rows[0]["file"])
    proc = subprocess.run([sys.executable, "-m", "fishcore", "predict", str(f4k_model.model_dir), photo, "--json",
                           "--threshold", "1.0"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["set"][0]["label"] == row["top"][0]["label"] and row["set_coverage"] == 0.9
    words = subprocess.run([sys.executable, "-m", "fishcore", "predict", str(f4k_model.model_dir), photo, "--threshold",
                            "1.0"], capture_output=True, text=True, cwd=REPO).stdout  # fmt: skip
    assert "not sure" in words and ("one of:" in words or len(row["set"]) == 1)


@pytest.mark.slow
def test_refitting_a_saved_model_chooses_its_threshold_from_validation(f4k_model, tmp_path):
    import shutil

    from fishcore.cli import main

    copy = tmp_path / "m"
    shutil.copytree(f4k_model.model_dir, copy)
    card = read_card(copy)
    card.promise, card.prediction_sets, card.threshold = {}, {}, 0.6  # as a model saved before this release
    (copy / "card.json").write_text(json.dumps(card.to_dict()), encoding="utf-8")
    assert Predictor.load(copy).promise is None
    assert main(["verdicts", str(copy), "--quiet"]) == 0
    again = read_card(copy)
    p = Promise.from_card(again.promise)
    assert p.photos == len(card.split["val"]) and HeldOut.load(copy / HELDOUT_FILE).count(VALIDATION) == p.photos
    assert again.prediction_sets["photos"] == p.photos and again.threshold == p.threshold


@pytest.mark.slow
def test_predict_log_keeps_the_set_and_log_list_and_export_show_it(f4k_model, tmp_path, monkeypatch, capsys):
    from fishcore.cli import main
    from fishcore.store.catchlog import CatchLog

    monkeypatch.setenv("FISHCORE_CATCHLOG_DIR", str(tmp_path / "log"))
    root = read_card(f4k_model.model_dir).test_root
    photos = [str(root / r["file"]) for r in f4k_model.test_report.rows[:3]]
    assert main(["predict", str(f4k_model.model_dir), *photos, "--threshold", "1.0", "--log", "--place", "Muara Angke"]) == 0
    entries = CatchLog().entries()
    assert len(entries) == 3 and all(e.threshold == 1.0 and e.set_coverage == 0.9 and e.candidates for e in entries)
    assert all(e.candidates[0][0] == e.label and e.verdict != CONFIDENT for e in entries)
    capsys.readouterr()
    assert main(["log", "list"]) == 0
    listed = capsys.readouterr().out
    several = [e for e in entries if len(e.candidates) > 1]
    assert all(f"one of: {', '.join(s for s, _ in e.candidates)}, 90%" in listed for e in several)
    assert main(["log", "export", "--out", str(tmp_path / "log.csv")]) == 0
    header = (tmp_path / "log.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[-4:] == ["candidates", "set_coverage", "threshold", "device"]
    assert main(["log", "confirm", entries[0].id[:8], "right"]) == 0
    assert CatchLog().get(entries[0].id).word == "right"


def test_the_field_test_says_when_confident_answers_clearly_break_the_promise():
    from fishcore.training.teaching import KeptBackScore

    assert KeptBackScore(40, 50, 30, 40, 0).breaks_promise(0.95)  # 30 of 40: even its upper bound is far below 95 %
    assert not KeptBackScore(9, 10, 9, 10, 0).breaks_promise(0.95)  # 9 of 10: too few to say
    assert not KeptBackScore(98, 100, 97, 98, 0).breaks_promise(0.95)
    assert not KeptBackScore(0, 3, 0, 0, 0).breaks_promise(0.95)  # nothing confident: nothing broken
