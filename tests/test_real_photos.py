"""End-to-end on the real photos in ../shared/data: the numbers the README reports come from here."""

import json
from collections import defaultdict

import pytest

from fishcore.data.scan import scan
from fishcore.inference.predict import Predictor
from fishcore.store.model_files import bundled_model_dir, read_card

from conftest import F4K, LSFD, require_shared
from test_cli import _cli_here, run_cli


def test_lsfd_scans_clean():
    result = scan(require_shared(LSFD))
    assert len(result.classes) == 9 and set(result.counts.values()) == {200} and not result.problems


def test_bundled_model_recognises_lsfd_photos_it_was_not_trained_on():
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    assert card.dataset["fingerprint"] == scan(root).fingerprint  # the split refers to these very files
    per_class = defaultdict(list)
    for rel in card.split["test"]:
        per_class[rel.split("/")[0]].append(rel)
    picks = [rel for rels in per_class.values() for rel in rels[:3]]
    assert len(picks) == 27 and not set(picks) & set(card.split["train"])
    predictor = Predictor.load(bundled_model_dir())
    predictions = predictor.predict([str(root / rel) for rel in picks])
    wrong = [(rel, p.label) for rel, p in zip(picks, predictions, strict=True) if p.label != rel.split("/")[0]]
    assert not wrong
    assert sum(p.verdict == "confident" for p in predictions) >= 25


@pytest.mark.slow
def test_lsfd_train_then_evaluate_test_split_through_the_cli(tmp_path, monkeypatch, capsys):
    """Training is a real `python -m fishcore` process; evaluate and predict run the CLI's main() in-process."""
    root = require_shared(LSFD)
    out = tmp_path / "lsfd_model"
    run_cli("train", root, "--out", out, "--quiet")

    def cli(*args):
        return _cli_here(tmp_path / "home", monkeypatch, capsys, *args).stdout

    report = json.loads(cli("evaluate", out, root, "--split", "test", "--json"))
    print(f"LSFD test split: n={report['n']} accuracy={report['accuracy']:.4f} macro_f1={report['macro_f1']:.4f}")
    assert report["macro_f1"] >= 0.97
    [pred] = json.loads(cli("predict", out, root / report["rows"][0]["file"], "--json"))
    assert pred["top"][0]["label"] == report["rows"][0]["predicted"]


@pytest.mark.slow
def test_f4k_new_species_retrain_clearly_beats_chance(tmp_path):
    root = require_shared(F4K)
    out = tmp_path / "f4k_model"
    # Frames of one video track stay on one side of the split. Auto mode compares its candidates within a minute
    # (its default three would spend most of them fine-tuning; the auto-mode tests cover the search itself).
    proc = run_cli("train", root, "--out", out, "--quiet", "--epochs", "6", "--batch-size", "16", "--budget", "60",
                   "--group-pattern", r"fish_(\d+)_")  # fmt: skip
    assert "note: --epochs is not used in auto mode" in proc.stderr  # auto mode picks its own; the user is told
    card = json.loads((out / "card.json").read_text())
    tracks = {side: {f.rsplit("_", 1)[0] for f in card["split"][side]} for side in ("train", "val", "test")}
    assert not tracks["train"] & tracks["test"] and not tracks["train"] & tracks["val"]
    test = card["metrics"]["test"]
    print(f"F4K test split: n={test['n']} accuracy={test['accuracy']:.4f} macro_f1={test['macro_f1']:.4f}")
    assert test["accuracy"] >= 0.6  # chance is 0.25 for 4 species
