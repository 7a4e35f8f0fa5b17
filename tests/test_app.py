"""Every page through streamlit.testing.v1.AppTest, with the real bundled model and real photos."""

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from fishcore.inference.evaluate import saved_test_report
from fishcore.store.model_files import bundled_model_dir, read_card

from conftest import LSFD, REPO, lsfd_subset, require_shared

PAGES = [
    "pages/home_page.py",
    "pages/photos_page.py",
    "pages/data_page.py",
    "pages/augment_page.py",
    "pages/train_page.py",
    "pages/evaluate_page.py",
    "pages/predict_page.py",
    "pages/models_page.py",
    "pages/compare_page.py",
    "pages/catchlog_page.py",
    "pages/phones_page.py",
]


@pytest.fixture(autouse=True)
def fresh_workspace(tmp_path, monkeypatch):
    """A fresh clone's state: no trained models, no jobs, no caches; the real photos as default data."""
    monkeypatch.setenv("FISHCORE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FISHCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FISHCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FISHCORE_DATASETS_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("FISHCORE_DATA", str(LSFD))
    monkeypatch.setenv("FISHCORE_CATCHLOG_DIR", str(tmp_path / "catchlog"))
    return tmp_path


def page(path: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.switch_page(path)
    return at.run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_without_exception(path):
    require_shared(LSFD)
    at = page(path)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title


def test_home_shows_the_bundled_model_card():
    at = page("pages/home_page.py")
    assert any(m.label == "Species" and m.value == "9" for m in at.metric)
    assert any(m.label == "Test macro-F1" for m in at.metric)


def test_models_page_says_what_each_models_confident_promises(tmp_path):
    import shutil

    # A copy of the bundled model whose held-out photos could not back the promise (as on video frames).
    copy = tmp_path / "models" / "frames"
    shutil.copytree(bundled_model_dir(), copy)
    card = json.loads((copy / "card.json").read_text())
    card["promise"]["backed"] = False
    (copy / "card.json").write_text(json.dumps(card))
    at = page("pages/models_page.py")
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any("Chosen for this model: at least 95% of its confident answers are right" in c for c in captions)
    assert any(c.startswith("The photos it never trained on are too few, or too alike") for c in captions)


def test_data_page_without_a_dataset_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("FISHCORE_DATA", str(tmp_path / "nothing here"))
    at = page("pages/data_page.py")
    assert not at.exception and not at.error
    assert any("not found" in i.value for i in at.info)


def _test_photos(n_species: int):
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    picked = {}
    for rel in card.split["test"]:
        picked.setdefault(rel.split("/")[0], rel)
    return [(root / rel, label) for label, rel in list(picked.items())[:n_species]]


def test_predict_names_uploaded_and_camera_photos():
    photos = _test_photos(3)
    at = page("pages/predict_page.py")
    for path, _ in photos[:2]:
        at.file_uploader(key="pred_upload").upload(path.name, path.read_bytes(), "image/jpeg")
    at.camera_input(key="pred_camera").upload("camera.jpg", photos[2][0].read_bytes())
    at.run()
    assert not at.exception
    shown = " ".join(s.value for s in at.success)
    names = read_card(bundled_model_dir()).species
    for _, label in photos:
        assert names[label]["en"] in shown  # the species card's English name, not the folder name
    assert len(at.dataframe) == 1  # several photos: one table, downloadable
    # The three photos as shots of one fish: one combined answer above the three single ones.
    at.toggle(key="pred_together").set_value(True).run()
    assert not at.exception and any("3 photos together:" in s.value for s in [*at.success, *at.warning])
    at.toggle(key="pred_together").set_value(False).run()
    # Where the model looked, on request: a Grad-CAM overlay of the first photo for its predicted species.
    at.toggle(key="pred_heat_on_0").set_value(True).run()
    assert not at.exception and len(at.image) >= 4 and any("Grad-CAM" in c.value for c in at.caption)
    at.selectbox(key="pred_heat_0_class").set_value(photos[1][1]).run()
    assert any("This map: " in c.value for c in at.caption)
    at.toggle(key="pred_heat_on_0").set_value(False).run()
    # The slider starts at the model's own threshold and says what it promises, from its held-out photos.
    assert at.slider(key="pred_threshold").value == read_card(bundled_model_dir()).threshold
    assert any("Chosen for this model: at least 95% of its confident answers are right" in c.value for c in at.caption)
    assert any(c.value.startswith("Confident answers of this model were right at least 95%") for c in at.caption)
    # Raising the threshold re-judges the same predictions: now every photo is "not sure", one of a few species.
    at.slider(key="pred_threshold").set_value(1.0).run()
    assert not at.exception and not at.success
    assert sum("Not sure" in w.value for w in at.warning) == 3
    assert any(c.value.startswith("At 100%: on 274 photos it never trained on, 0 of 0") for c in at.caption)
    # A set of one says the best guess; a set of several names them with the coverage.
    assert all(("Probably one of:" in w.value and "(90%)" in w.value) or "Best guess:" in w.value for w in at.warning)


def test_predict_records_each_answer_once_and_takes_the_users_word(tmp_path):
    from fishcore.store.catchlog import CatchLog

    photos = _test_photos(2)
    at = page("pages/predict_page.py")
    at.text_input(key="catch_place").set_value("Muara Angke")
    for path, _ in photos:
        at.file_uploader(key="pred_upload").upload(path.name, path.read_bytes(), "image/jpeg")
    at.run()
    at.run()  # a rerun (any click) records nothing twice
    assert not at.exception and not at.error
    log = CatchLog(folder=tmp_path / "catchlog")
    entries = log.entries()
    assert len(entries) == 2 and {e.place for e in entries} == {"Muara Angke"}
    assert {e.label for e in entries} == {label for _, label in photos}
    # One tap: "Right" on the first, "Wrong, it is ..." a new species on the second.
    button(at, "Right").click().run()
    first = next(e for e in log.entries() if e.word is not None)
    assert first.word == "right" and first.word_by.startswith("session ")
    at.selectbox(key="pred_word_1_pick").set_value("\0new").run()
    at.text_input(key="pred_word_1_typed").set_value("Kakap merah").run()
    next(b for b in at.button if b.key == "pred_word_1_save").click().run()
    words = {e.label: (e.word, e.true_species) for e in log.entries()}
    assert sorted(words.values(), key=str) == sorted([("right", None), ("wrong", "Kakap merah")], key=str)
    # Recording off: a new photo is answered and not recorded.
    at.toggle(key="catch_on").set_value(False).run()
    at.camera_input(key="pred_camera").upload("camera.jpg", _test_photos(3)[2][0].read_bytes())
    at.run()
    assert not at.exception and len(log.entries()) == 2


def test_the_catch_log_page_lists_filters_and_corrects_entries(tmp_path):
    from fishcore.store.catchlog import Answer, CatchLog

    log = CatchLog(folder=tmp_path / "catchlog")
    for i, (path, label) in enumerate(_test_photos(3)):
        answer = Answer(label, 0.9, "confident", "known", [(label, 0.9)])
        log.record(path.read_bytes(), answer, "lsfd_mobilenet_v2", "c" * 64, place=["Muara Angke", "Cilincing"][i % 2])
    at = page("pages/catchlog_page.py")
    assert not at.exception and not at.error
    assert any(m.label == "Entries" and m.value == "3" for m in at.metric)
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) >= 1  # fish per species per day
    at.selectbox(key="log_place").set_value("Cilincing").run()
    assert any(m.label == "Entries" and m.value == "1" for m in at.metric)
    [entry] = log.entries(__import__("fishcore.store.catchlog", fromlist=["LogFilter"]).LogFilter(place="Cilincing"))
    next(b for b in at.button if b.key == f"log_{entry.id}_notfish").click().run()
    assert log.get(entry.id).word == "not_fish"
    assert any(m.label == "Fish counted" and m.value == "0" for m in at.metric)  # not a fish: not counted
    # How many fish a photo counts, and their weight; a bad weight is refused with its reason and changes nothing.
    at.selectbox(key="log_place").set_value("Muara Angke").run()
    other = next(e for e in log.entries() if e.place == "Muara Angke")
    at.number_input(key=f"log_{other.id}_count").set_value(4)
    at.text_input(key=f"log_{other.id}_weight").set_value("-3")
    next(b for b in at.button if b.key == f"log_{other.id}_amount").click().run()
    assert any("above 0" in e.value for e in at.error) and log.get(other.id).count == 1
    at.text_input(key=f"log_{other.id}_weight").set_value("2,5")
    next(b for b in at.button if b.key == f"log_{other.id}_amount").click().run()
    assert (log.get(other.id).count, log.get(other.id).weight_kg) == (4, 2.5)
    at.selectbox(key="log_place").set_value("Cilincing").run()
    at.selectbox(key="log_confirmed").set_value(True).run()
    assert any(m.label == "Entries" and m.value == "1" for m in at.metric)
    # Both charts once someone has given a word: fish per day, and the model's accuracy on confirmed entries.
    at.selectbox(key="log_place").set_value("\0any")
    at.selectbox(key="log_confirmed").set_value(None).run()
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2


def test_the_review_queue_confirms_in_one_tap_and_teaching_starts_a_training_run(tmp_path):
    from fishcore.store.catchlog import Answer, CatchLog
    from fishcore.store.catchlog.queue import review_queue
    from fishcore.training.jobs import active_job, list_jobs

    log = CatchLog(folder=tmp_path / "catchlog")
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    for rel in card.split["test"][:12]:
        label = rel.split("/")[0]
        log.record((root / rel).read_bytes(), Answer(label, 0.55, "uncertain", "low_confidence", [(label, 0.55)]), "m", "c")
    at = page("pages/catchlog_page.py")
    assert not at.exception and not at.error
    first = review_queue(log.entries())[0].lead
    assert any(c.value.startswith("The answers the model was least sure of come first") for c in at.caption)
    next(b for b in at.button if b.key == f"queue_{first.id}_right").click().run()
    assert log.get(first.id).word == "right" and review_queue(log.entries())[0].lead.id != first.id  # the next at once
    for e in log.entries():
        if e.word is None:
            log.set_word(e.id, "right")
    at.run()
    at.text_input(key="teach_dataset").set_value("lsfd-field")
    at.checkbox(key="teach_start_from").set_value(False)
    button(at, "Teach and send to the phones").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    taught = [e for e in log.entries() if e.taught_to == "lsfd-field"]
    assert taught and len(taught) < 12  # the field test set (about one in five) is held back
    assert sum(1 for _ in (tmp_path / "datasets" / "lsfd-field").rglob("*.jpg")) == len(taught)
    job = list_jobs(tmp_path / "runs" / "jobs")[0]
    assert job.spec.data_dir.endswith("lsfd-field") and job.spec.train.mode == "auto"
    assert job.spec.teach["activate"] and job.spec.teach["compare_with"].endswith("lsfd_mobilenet_v2")
    job.request_stop(keep=False)
    deadline = time.time() + 120
    while active_job(tmp_path / "runs" / "jobs") is not None and time.time() < deadline:
        time.sleep(0.5)


def test_evaluate_cell_selection_filters_to_that_cells_photos():
    require_shared(LSFD)
    at = page("pages/evaluate_page.py")
    assert not at.exception
    report = saved_test_report(bundled_model_dir(), LSFD)
    assert report is not None
    assert any(m.label == "Photos" and m.value == str(report.n) for m in at.metric)
    true = report.classes[2]
    at.selectbox(key="eval_true").set_value(true)
    at.selectbox(key="eval_pred").set_value(true)
    at.run()
    expected = report.cell(true, true)
    text = " ".join(m.value for m in at.markdown)
    assert f"**{len(expected)}** correct photo(s)" in text
    # The thumbnails are exactly that cell's photos, in the report's order (least confident first),
    # laid out in rows of 6 (AppTest lists them column by column).
    captions = [img.proto.imgs[0].caption.split(" · ")[1] for img in at.get("image")]
    names = [r["file"].rsplit("/", 1)[-1] for r in expected[:24]]
    column_major = [names[i] for c in range(6) for i in range(c, len(names), 6)]
    assert len(names) > 5 and captions == column_major
    other = report.classes[3]
    at.selectbox(key="eval_pred").set_value(other).run()
    assert f"**{len(report.cell(true, other))}** mistaken photo(s)" in " ".join(m.value for m in at.markdown)


def _job_files(home) -> str:
    """What the job folders say, for a failure message: status.json and the end of output.log."""
    out = []
    for job_dir in sorted((home / "runs" / "jobs").glob("*/")):
        for name in ("status.json", "output.log"):
            path = job_dir / name
            text = path.read_text(errors="replace")[-3000:] if path.is_file() else "(none)"
            out.append(f"--- {job_dir.name}/{name}\n{text}")
    return "\n".join(out)


@pytest.mark.slow
def test_train_page_starts_a_background_job_shows_progress_and_stops(tmp_path):
    subset = lsfd_subset(tmp_path / "subset", per_class=12)
    at = page("pages/train_page.py")
    at.text_input(key="train_path_box").set_value(str(subset))
    # Patience at its top: early stopping must not end the run (1.6 s on warm features once) before the page looks.
    settings = (("Epochs", 30), ("Batch size", 4), ("Image size", 64), ("Validate every N iterations", 2))
    settings += (("Early-stopping patience", 100),)
    for label, value in settings:
        next(n for n in at.number_input if n.label == label).set_value(value)
    next(s for s in at.selectbox if s.label == "Precision").set_value("fp32")
    mode = at.radio(key="setting_mode")
    assert mode.options[0].startswith("Automatic") and mode.options[1].startswith("Instant")
    mode.set_value("fast")
    at.run()
    button(at, "Start training").click().run()
    assert not at.exception and not at.error
    deadline = time.time() + 180
    while time.time() < deadline:
        at.run()
        if at.progress and "training:" in at.progress[0].proto.text and not at.progress[0].proto.text.startswith("training: 0/"):
            break
        if any(s.value.endswith(": failed") for s in at.subheader):
            pytest.fail(f"the job failed: {[e.value for e in at.error]}\n{_job_files(tmp_path)}")
        time.sleep(1)
    else:
        pytest.fail(f"no training progress shown: {[p.proto.text for p in at.progress]}\n{_job_files(tmp_path)}")
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the live curves
    button(at, "Stop and keep the best model so far").click().run()
    deadline = time.time() + 120
    while time.time() < deadline:
        at.run()
        if any("stopped" in s.value for s in at.subheader):
            break
        time.sleep(1)
    else:
        pytest.fail(f"job did not stop: {[s.value for s in at.subheader]}\n{_job_files(tmp_path)}")
    assert any("Stopped by request" in s.value for s in at.success)
    saved = [d for d in (tmp_path / "models").iterdir() if (d / "card.json").is_file()]
    assert len(saved) == 1 and read_card(saved[0]).training.precision == "fp32"
    # Stopped before its threshold was chosen: the fixed one, and the page says it promises nothing.
    assert read_card(saved[0]).promise == {}
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Training was stopped before this model's threshold was chosen") for c in captions), captions


def test_train_page_shows_a_rejected_setting_beside_its_control(tmp_path):
    subset = lsfd_subset(tmp_path / "subset", per_class=4)
    at = page("pages/train_page.py")
    at.text_input(key="train_path_box").set_value(str(subset))
    at.run()
    at.radio(key="setting_mode").set_value("fast")  # auto mode chooses its own freeze point
    at.number_input(key="setting_freeze_until").set_value(25)  # mobilenet_v2 has 19
    at.run()
    button(at, "Start training").click().run()
    assert not at.exception
    assert any("must be from 0 to 19 (you entered 25)" in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("spec.json"))


def test_the_train_pages_advanced_settings_have_the_configs_limits_and_defaults():
    """Each advanced setting's widget comes from its Rule: the config's default, limits and choices, so the page
    accepts exactly what training accepts (epochs up to 10,000, image size up to 1,024)."""
    from fishcore.training.run import TRAIN_SETTINGS

    at = page("pages/train_page.py")
    shown = [s for s in TRAIN_SETTINGS.values() if s.rule.label]
    assert {"epochs", "image_size", "mode", "freeze_until", "lr"} <= {s.name for s in shown}
    for s in shown:
        rule = s.rule
        if rule.choices:
            box = at.radio(key="setting_mode") if s.name == "mode" else at.selectbox(key=f"setting_{s.name}")
            assert len(box.options) == len(rule.choices), s.name
            assert box.index == rule.choices.index(s.default), s.name
        elif rule.kind is bool:
            assert at.checkbox(key=f"setting_{s.name}").value == s.default, s.name
        else:
            box = at.number_input(key=f"setting_{s.name}")
            assert box.value == s.default, s.name
            assert box.min == (None if rule.lo is None or rule.lo_open else rule.lo), s.name
            assert box.max == (None if rule.hi is None or rule.hi_open else rule.hi), s.name
    assert at.number_input(key="setting_epochs").max == 10_000 and at.number_input(key="setting_image_size").max == 1024


def test_dataset_health_on_my_photos_flags_a_photo_in_the_wrong_species_and_moves_it(tmp_path):
    from conftest import make_image_folder

    root = make_image_folder(tmp_path / "datasets" / "reef", ["red", "green", "blue"], 14, size=64)
    wrong = sorted((root / "red").iterdir())[0]
    wrong.rename(root / "green" / ("odd-" + wrong.name))
    at = page("pages/photos_page.py")
    at.selectbox(key="photos_dataset").set_value("reef").run()
    button(at, "Check this dataset").click().run()
    assert not at.exception and not at.error
    assert any("Possibly in the wrong species" in m.value for m in at.markdown)
    flagged = next(i for i, m in enumerate(at.markdown) if "Possibly in the wrong species" in m.value and "odd-" in m.value)
    assert flagged is not None
    n = next(int(sb.key.split("_")[-1]) for sb in at.selectbox if sb.key and sb.key.startswith("health_to_"))
    at.selectbox(key=f"health_to_{n}").set_value("red").run()
    next(b for b in at.button if b.key == f"health_move_{n}").click().run()
    assert (root / "red" / ("odd-" + wrong.name)).is_file() and not (root / "green" / ("odd-" + wrong.name)).exists()


def test_my_photos_creates_a_dataset_previews_an_upload_and_adds_it(tmp_path):
    """Photos of one species into a new class: a preview first, nothing written until Add."""
    import io

    from conftest import class_image

    at = page("pages/photos_page.py")
    at.text_input(key="new_0").set_value("reef").run()
    next(b for b in at.button if b.label == "Create").click().run()
    assert not at.exception and at.selectbox(key="photos_dataset").value == "reef"
    # AppTest has no file uploader: the page's plan and apply are the library's, exercised directly.
    from fishcore.store.my_photos import DatasetArea

    area = DatasetArea(tmp_path / "datasets")
    for ci, name in enumerate(["kakap", "tongkol"]):
        photos = []
        for i in range(12):
            buf = io.BytesIO()
            class_image(ci, seed=100 * ci + i).save(buf, "PNG")
            photos.append((f"{i}.png", buf.getvalue()))
        area.import_photos("reef", photos, name)
    at.run()
    assert any(m.label == "Species" and m.value == "2" for m in at.metric)
    assert any(m.label == "Photos" and m.value == "24" for m in at.metric)
    # rename through the page's form
    at.selectbox(key="rename_from").set_value("kakap")
    at.text_input(key="rename_to").set_value("Kakap merah")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert not at.exception and sorted(area.classes("reef")) == ["Kakap merah", "tongkol"]
    # the dataset is offered to the other pages
    train = page("pages/train_page.py")
    assert "reef" in train.selectbox(key="train_dataset_choice").options[0]


def test_predict_in_bahasa_indonesia_from_the_url_with_species_cards():
    photos = _test_photos(2)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.query_params["lang"] = "id"
    at.run()
    assert at.title[0].value == "Pengenal spesies ikan laut" and at.sidebar.selectbox(key="lang_choice").value == "id"
    # The sidebar switch changes the language (and the URL), and back.
    at.sidebar.selectbox(key="lang_choice").set_value("en").run()
    assert at.title[0].value == "Marine fish species classifier" and at.query_params["lang"] in ("en", ["en"])
    at.sidebar.selectbox(key="lang_choice").set_value("id").run()
    assert at.title[0].value == "Pengenal spesies ikan laut"
    at.switch_page("pages/predict_page.py").run()
    assert at.title[0].value == "Ikan apa ini?"  # remembered for the session on another page
    at.file_uploader(key="pred_upload").upload(photos[0][0].name, photos[0][0].read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    card = read_card(bundled_model_dir()).species[photos[0][1]]
    answer = " ".join(s.value for s in at.success)
    assert card["id"] in answer and "yakin" in answer and "%" in answer
    shown = " ".join(m.value for m in at.markdown)
    assert card["scientific"] in shown and card["note_id"] in shown  # the species card, in Indonesian


def test_models_page_shows_the_species_card_editor_and_saves_cards_into_the_model():
    import shutil

    import pytest as _pytest

    from fishcore.errors import FishcoreError
    from fishcore.store.species import save_cards
    from fishcore.store.workspace import Workspace

    copy = Workspace.from_env().models / "mine"
    shutil.copytree(bundled_model_dir(), copy)
    at = page("pages/models_page.py")
    at.toggle(key=f"cards_on_{copy}").set_value(True).run()
    assert not at.exception and (at.get("arrow_data_editor") or at.get("data_editor"))
    # What the Save button calls with the edited table (AppTest cannot type into a data editor's cells).
    button(at, "Save species cards").click().run()
    assert not at.exception and any("Species cards of" in s.value for s in at.success)
    cards = read_card(copy).species
    assert cards == read_card(bundled_model_dir()).species  # saved unchanged: the table round-trips
    cards["Trout"] = {**cards["Trout"], "id": "Ikan trout (diubah)", "note_en": float("nan")}
    save_cards(copy, cards)
    saved = read_card(copy).species["Trout"]
    assert saved["id"] == "Ikan trout (diubah)" and "note_en" not in saved  # an emptied cell drops the field
    with _pytest.raises(FishcoreError):
        save_cards(copy, {"Unicorn": {"en": "Unicorn"}})
    with _pytest.raises(FishcoreError):
        save_cards(copy, {"Trout": {"en": "x" * 301}})


@pytest.mark.parametrize("path", PAGES)
def test_every_page_opens_in_bahasa_indonesia_without_english_words(path):
    """Each page in Indonesian from the URL: no error, and no label or text the catalogue would have translated."""
    import json

    catalogue = json.loads((REPO / "assets" / "locales" / "id.json").read_text(encoding="utf-8"))
    english = {k for k, v in catalogue.items() if k != v}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.query_params["lang"] = "id"
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    shown = []
    for kind in ("title", "header", "subheader", "caption", "markdown", "info", "warning", "error", "success"):
        shown += [e.value for e in getattr(at, kind)]
    for kind in ("button", "metric", "selectbox", "radio", "toggle", "text_input", "number_input", "slider", "expander"):
        shown += [e.label for e in getattr(at, kind)]
    assert at.title and at.title[0].value in catalogue.values()
    untranslated = sorted({text for text in shown if text in english})
    assert not untranslated, f"{path} shows English text in Indonesian: {untranslated}"


# What a fisherman must never read on Predict or the Catch log: a module path, a source file, a formula, a
# server folder or a database address.
TECHNICAL = [
    (r"fishcore\.\w", "a module path"),
    (r"\b\w+\.py\b", "a source file"),
    (r"\(1 - |1 - confidence|1 - keyakinan|distance /|x \(distance", "a formula"),
    (r"(^|[\s(])/(tmp|root|home|work|var|srv)/", "a server folder"),
    (r"sqlite|postgresql|\.sqlite\b", "a database"),
    (r"catchlog/|assets/|models/", "a project folder"),
]


def _everything_shown(at) -> list[str]:
    shown = []
    for kind in ("title", "header", "subheader", "caption", "markdown", "info", "warning", "error", "success", "toast"):
        shown += [e.value for e in getattr(at, kind, [])]
    for kind in ("button", "metric", "selectbox", "toggle", "text_input", "number_input", "slider", "expander", "checkbox"):
        for e in getattr(at, kind):
            shown += [e.label, getattr(e, "help", None) or ""]
    shown += [p.proto.popover.label for p in at.get("popover")]
    return [s for s in shown if s]


@pytest.mark.parametrize("lang", ["en", "id"])
def test_predict_and_the_catch_log_show_a_fisherman_nothing_technical(lang, tmp_path):
    """Both pages with photos answered and recorded, in either language: no text names a module, a formula or a
    server folder; how the review queue ranks is one click away, in words."""
    import re

    from fishcore.inference.predict import Predictor
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.model_files import model_checksum

    photos = _test_photos(2)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.query_params["lang"] = lang
    at.switch_page("pages/predict_page.py").run()
    at.text_input(key="catch_place").set_value("Muara Angke")
    for path, _ in photos:
        at.file_uploader(key="pred_upload").upload(path.name, path.read_bytes(), "image/jpeg")
    at.run()
    assert not at.exception
    predict_texts = _everything_shown(at)
    log = CatchLog(folder=tmp_path / "catchlog")
    assert len(log.entries()) == 2  # the answers were recorded
    predictor = Predictor.load(bundled_model_dir())
    [unsure] = predictor.predict([photos[0][0]], threshold=0.999)  # an unsure answer too, with its prediction set
    checksum = model_checksum(bundled_model_dir())
    log.record(photos[0][0].read_bytes(), predictor.answer(unsure, 0.999), "lsfd_mobilenet_v2", checksum)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.query_params["lang"] = lang
    at.switch_page("pages/catchlog_page.py").run()
    assert not at.exception and not at.error
    log_texts = _everything_shown(at)
    for page_name, texts in (("Predict", predict_texts), ("Catch log", log_texts)):
        for text in texts:
            assert str(tmp_path) not in text, (page_name, text)
            for pattern, what in TECHNICAL:
                assert not re.search(pattern, text), f"{page_name} ({lang}) shows {what}: {text!r}"
    # The ranking, in words, one click away.
    why = "Why this order?" if lang == "en" else "Mengapa urutan ini?"
    assert why in log_texts
    words = "unsure" if lang == "en" else "ragu"
    assert any((words in t and "highest score" in t) or (words in t and "nilai tertinggi" in t) for t in log_texts)
