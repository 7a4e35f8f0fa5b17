"""Learning from the field: the review queue, the field test set, teaching confirmed photos, field accuracy."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from fishcore.config import TrainConfig
from fishcore.errors import DatasetError
from fishcore.store.catchlog import Answer, CatchLog, accuracy_by_week, dispose_engines
from fishcore.store.catchlog.kept_back import FIELD_TEST_EVERY, is_field_test, kept_back_set, teachable
from fishcore.store.catchlog.queue import review_order, review_queue, review_score
from fishcore.store.model_files import bundled_model_dir, read_card
from fishcore.store.my_photos import FIELD_MANIFEST, DatasetArea, field_manifest
from fishcore.training.teaching import kept_back_score, teach, teaching_job_spec

from conftest import LSFD, class_image, require_shared


def _bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def log(tmp_path):
    yield CatchLog(f"sqlite:///{tmp_path / 'log.sqlite'}", tmp_path / "catchlog")
    dispose_engines()


def test_the_queue_puts_unsure_and_unfamiliar_first_and_collapses_near_copies():
    assert review_score(0.4, None, None) > review_score(0.9, None, None)  # less sure first
    assert review_score(0.9, 1.0, 0.5) > review_score(0.9, 0.1, 0.5)  # then less familiar
    assert review_score(0.9, 100.0, 0.5) == pytest.approx(0.1 + 0.5 * 2.0)  # unfamiliarity is capped
    scores = [0.2, 0.9, 0.5, 0.85, 0.1]
    # 1 and 3 differ in 6 bits (near-copies, the split's rule), 0 and 2 in 2; the pairs in over 30
    hashes = [0xFFFF_FFFF_0000_0000, 0, 0xFFFF_FFFF_0000_0003, 0b11_1111, None]
    groups = review_order(scores, hashes)
    assert groups == [[1, 3], [2, 0], [4]]  # best first; each near-copy under the best of its group


def test_the_field_test_set_is_fixed_by_the_photo_and_about_one_in_five():
    shas = [f"{i:08x}" + "0" * 56 for i in range(1000)]
    chosen = [s for s in shas if is_field_test(s)]
    assert len(chosen) == 1000 // FIELD_TEST_EVERY and chosen == [s for s in shas if is_field_test(s)]


def _fill(log, n: int, label: str = "red", word: str | None = None, species: str | None = None, start: int = 0):
    ids = []
    for i in range(start, start + n):
        answer = Answer(label, 0.3 + 0.6 * (i % 7) / 7, "confident", "known", [(label, 0.9)], 0.2, 0.4)
        done = log.record(_bytes(class_image(i % 3, i, 64)), answer, "m", "c" * 64, when=datetime.now(UTC) - timedelta(minutes=i))
        if word:
            log.set_word(done.entry_id, word, species)
        ids.append(done.entry_id)
    return ids


def test_teaching_an_empty_log_says_what_to_do_first(log, tmp_path):
    with pytest.raises(DatasetError, match="confirm some answers"):
        teach(log, DatasetArea(tmp_path / "datasets"), "field")


def test_the_queue_lists_unconfirmed_entries_and_a_near_copy_once(log):
    ids = _fill(log, 6)
    data = _bytes(class_image(0, 1000, 64))
    answer = Answer("red", 0.31, "uncertain", "low_confidence", [("red", 0.31)], 0.9, 0.4)
    twice = [log.record(data, answer, "m", "c").entry_id for _ in range(2)]  # the same photo twice
    log.set_word(ids[0], "right")
    queue = review_queue(log.entries())
    assert sum(len(item.entries) for item in queue) == 7  # six unconfirmed plus the one photo twice, minus the word
    first = queue[0]
    assert {e.id for e in first.entries} == set(twice)  # least sure and least familiar: first, and one item
    assert all(a.score >= b.score for a, b in itertools.pairwise(queue))


def test_teaching_adds_confirmed_photos_with_their_provenance_and_holds_the_field_test_back(log, tmp_path):
    area = DatasetArea(tmp_path / "datasets")
    _fill(log, 12, word="right")
    _fill(log, 8, label="red", word="wrong", species="Kakap merah", start=100)  # a new species by a correction
    _fill(log, 3, word="not_fish", start=200)  # never taught
    to_teach, held_back = teachable(log.entries())
    assert len(to_teach) + len(held_back) == 20 and all(is_field_test(e.photo_sha256) for e in held_back)
    lesson = teach(log, area, "field")
    counts = area.classes("field")
    assert sum(counts.values()) == len(to_teach) and set(counts) <= {"red", "Kakap merah"}
    manifest = field_manifest(lesson.dataset_dir)
    assert len(manifest) == len(to_teach) and (lesson.dataset_dir / FIELD_MANIFEST).is_file()
    some = next(iter(manifest.values()))
    assert set(some) >= {"entry", "date", "place", "model"}
    # Taught entries are not taught again; the field test set stays untaught.
    taught_ids = {x.id for x in to_teach}
    assert teachable(log.entries())[0] == [] and {e.taught_to for e in log.entries() if e.id in taught_ids} == {"field"}
    assert all(e.taught_to is None for e in kept_back_set(log.entries()))
    with pytest.raises(DatasetError, match="no confirmed photos"):
        teach(log, area, "field")
    # The accuracy chart tells training data from the field test set.
    parts: dict[str, int] = {}
    for row in accuracy_by_week(log.entries()):  # the entries span minutes, and may span a week's start (Monday 00:00)
        parts[row["entries"]] = parts.get(row["entries"], 0) + row["confirmed"]
    # (the "not a fish" entries are confirmed too: they count as field test or not taught, never as taught)
    assert parts.get("taught") == len(to_teach) and parts.get("field test", 0) >= len(held_back)
    spec = teaching_job_spec(lesson.dataset_dir, tmp_path / "models", "field", 60.0, len(lesson.taught))
    assert spec.train.mode == "auto" and spec.train.budget == 60.0 and "field photos" in spec.notes[0]
    assert spec.train.stronger_backbone is False  # a phone's update stays an update: the backbone does not change


def test_a_taught_model_records_its_field_photos_and_is_scored_on_the_field_test_set(log, tmp_path):
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    area = DatasetArea(tmp_path / "datasets")
    for start, label in ((0, "red"), (300, "green")):
        for i in range(start, start + 15):
            answer = Answer(label, 0.6, "uncertain", "low_confidence", [(label, 0.6)])
            done = log.record(_bytes(class_image(0 if label == "red" else 1, i, 64)), answer, "m", "c")
            log.set_word(done.entry_id, "right")
    lesson = teach(log, area, "field")
    options = RunOptions(out_dir=str(tmp_path / "models" / "field"), cache_dir=str(tmp_path / "cache"))
    outcome = train_folder(lesson.dataset_dir, TrainingRun(train=TrainConfig(mode="instant"), options=options))
    field = outcome.card.dataset["field_photos"]
    in_split = [*outcome.card.split["train"], *outcome.card.split["val"]]
    assert field["count"] == len(in_split) and set(field["entries"]) <= {e.id for e in lesson.taught}
    held = kept_back_set(log.entries())
    assert held and not set(field["entries"]) & {e.id for e in held}  # never trained on the field test set
    score = kept_back_score(outcome.model_dir, log)
    assert score.total == len(held) and 0 <= score.right <= score.total and score.skipped == 0


@pytest.mark.slow
def test_the_bundled_model_on_a_field_test_of_real_photos(log):
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    photos = [root / p for p in card.split["test"][:40]]
    for path in photos:
        label = path.parent.name
        answer = Answer(label, 0.9, "confident", "known", [(label, 0.9)])
        log.set_word(log.record(path.read_bytes(), answer, card.classes[0], "c").entry_id, "right")
    score = kept_back_score(bundled_model_dir(), log)
    assert score.total == len(kept_back_set(log.entries())) > 0
    assert score.right == score.total and score.confident_right == score.confident  # unseen LSFD test photos


@pytest.mark.slow
def test_a_version_taught_from_the_field_keeps_honest_verdicts(log, tmp_path):
    """Taught only from confirmed field photos (three LSFD species), the new version still calls no everyday photo
    and no reef fish it never saw "confident"."""
    from fishcore.inference.openset import CONFIDENT
    from fishcore.inference.predict import Predictor
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    from conftest import F4K, NONFISH

    root, nonfish, f4k = require_shared(LSFD), require_shared(NONFISH), require_shared(F4K)
    for species in ("Trout", "Shrimp", "Sea Bass"):
        for path in sorted((root / species).iterdir())[:40]:
            answer = Answer(species, 0.5, "uncertain", "low_confidence", [(species, 0.5)])
            log.set_word(log.record(path.read_bytes(), answer, "m", "c").entry_id, "right")
    lesson = teach(log, DatasetArea(tmp_path / "datasets"), "field")
    options = RunOptions(out_dir=str(tmp_path / "models" / "field"), cache_dir=str(tmp_path / "cache"))
    outcome = train_folder(lesson.dataset_dir, TrainingRun(train=TrainConfig(mode="instant"), options=options))
    assert outcome.card.openset and outcome.card.dataset["field_photos"]["count"] > 0
    predictor = Predictor.load(outcome.model_dir)
    everyday = sorted(nonfish.iterdir())[::5]
    reef = [p for d in sorted(f4k.iterdir()) for p in sorted(d.iterdir())[:15]]
    assert not [r.file for r in predictor.predict(everyday) if r.verdict == CONFIDENT]
    assert sum(r.verdict == CONFIDENT for r in predictor.predict(reef)) <= len(reef) * 0.1
    score = kept_back_score(outcome.model_dir, log)
    assert score.total > 0 and score.right / score.total >= 0.8  # its own species, on photos it was not taught


def test_dataset_health_finds_swapped_labels_near_copies_and_oddities_and_acts_on_them(tmp_path):
    from fishcore.training.health import check_dataset, keep

    from conftest import make_image_folder

    root = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 14, size=64)
    swapped = sorted((root / "red").iterdir())[0]
    swapped.rename(root / "green" / ("was-red-" + swapped.name))  # a red disc filed as green
    (root / "blue" / "copy-of-green.png").write_bytes(sorted((root / "green").iterdir())[1].read_bytes())
    flags = check_dataset(root, tmp_path / "cache")
    by_kind = {k: [f for f in flags if f.kind == k] for k in ("mislabel", "near_copy", "outlier")}
    assert by_kind["mislabel"][0].path == f"green/was-red-{swapped.name}" and by_kind["mislabel"][0].suggested == "red"
    assert any(f.path == "blue/copy-of-green.png" or f.other == "blue/copy-of-green.png" for f in by_kind["near_copy"])
    # The actions: move to the species it is, and keep (not flagged again).
    area = DatasetArea(tmp_path)
    assert area.move_photos("d", [f"green/was-red-{swapped.name}"], "red") == [f"red/was-red-{swapped.name}"]
    keep(root, ["blue/copy-of-green.png"])
    again = check_dataset(root, tmp_path / "cache")
    assert not [f for f in again if f.kind == "mislabel" and f.path.endswith(swapped.name)]
    assert not [f for f in again if f.path == "blue/copy-of-green.png"]
    with pytest.raises(DatasetError):
        area.move_photos("d", ["../../etc/passwd"], "red")


@pytest.mark.slow
def test_fishcore_teach_adds_the_confirmed_photos_and_trains_a_new_version(tmp_path, monkeypatch, capsys):
    """The command the Catch log page's button shares (fishcore.training.teaching.teach_and_train): the photos go into
    the dataset, the entries are marked taught, a training job makes the new version, and a second teach finds
    nothing new to teach."""
    from fishcore.cli import main

    for sub in ("models", "runs", "cache", "datasets", "catchlog"):
        monkeypatch.setenv(f"FISHCORE_{sub.upper()}_DIR", str(tmp_path / sub))
    log = CatchLog()
    for start, label in ((0, "red"), (300, "green")):
        for i in range(start, start + 12):
            answer = Answer(label, 0.6, "uncertain", "low_confidence", [(label, 0.6)])
            done = log.record(_bytes(class_image(0 if label == "red" else 1, i, 64)), answer, "m", "c")
            log.set_word(done.entry_id, "right")
    code = main(["teach", "--dataset", "reef", "--start-from", "none", "--budget", "10", "--wait"])
    out = capsys.readouterr()
    assert code == 0, out.err + out.out
    assert "field photos added" in out.out and "finished" in out.out
    to_teach, held_back = teachable(log.entries())
    assert to_teach == [] and held_back and all(e.taught_to is None for e in held_back)
    assert sum(DatasetArea(tmp_path / "datasets").classes("reef").values()) == 24 - len(held_back)
    assert (tmp_path / "models" / "reef" / "card.json").is_file()
    again = main(["teach", "--dataset", "reef", "--start-from", "none"])
    assert again == 2 and "no confirmed photos" in capsys.readouterr().err
    dispose_engines()
