"""Crashes and state on disk: hostile model files, a process killed while saving, a training job killed mid-run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from fishcore.errors import ModelFileError
from fishcore.inference.predict import Predictor
from fishcore.models.backbones import file_sha256
from fishcore.store.jsonfile import write_json
from fishcore.store.model_files import WEIGHTS_FILE, bundled_model_dir, list_models, load_model, read_card
from fishcore.training.jobs import Job

from conftest import REPO, lsfd_subset


class _RunsCode:
    """Unpickling this would run a shell command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_crafted_to_run_code_is_refused_and_the_code_never_runs(tmp_path):
    import shutil

    model = tmp_path / "evil"
    shutil.copytree(bundled_model_dir(), model)
    marker = tmp_path / "pwned"
    torch.save({"weights": _RunsCode(marker)}, model / WEIGHTS_FILE)
    card = read_card(model)
    card.weights_sha256 = file_sha256(model / WEIGHTS_FILE)  # the attacker controls the card too
    write_json(model / "card.json", card.to_dict())
    for load in (load_model, Predictor.load):
        with pytest.raises(ModelFileError, match="cannot read"):
            load(model)
    assert not marker.exists()


def test_a_damaged_or_foreign_model_folder_is_refused_with_its_reason(tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(bundled_model_dir(), model)
    (model / WEIGHTS_FILE).write_bytes((model / WEIGHTS_FILE).read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="does not match its card"):
        load_model(model)
    card = read_card(bundled_model_dir())
    data = card.to_dict()
    data["format_version"] = 99
    write_json(model / "card.json", data)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(model)


SAVER = textwrap.dedent(
    """
    import sys
    from fishcore.store.model_files import load_model, save_version
    model, card = load_model(sys.argv[1])
    while True:
        save_version(model, card, sys.argv[2])
    """
)


@pytest.mark.slow
def test_sigkill_while_saving_leaves_every_visible_model_whole(tmp_path):
    out = tmp_path / "models" / "fish"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def saved() -> int:
        return len(list((tmp_path / "models").glob("fish*")))

    for delay in (0.0, 0.13, 0.29, 0.41):
        before = saved()
        proc = subprocess.Popen([sys.executable, str(script), str(bundled_model_dir()), str(out)], env=env, cwd=REPO)
        deadline = time.time() + 120
        while time.time() < deadline and saved() < before + 2:  # saving in a loop by now
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    listed = list_models(tmp_path / "models")
    assert len(listed) >= 8
    for folder, card, problem in listed:
        assert card is not None and not problem, (folder, problem)
        load_model(folder)  # the weights match the card's sha256 and load
    # What a kill left behind is hidden (a dot-folder), never a half-written model.
    leftovers = [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    assert all(".tmp-" in p.name or ".old-" in p.name for p in leftovers)


@pytest.mark.slow
def test_a_killed_training_job_says_interrupted_keeps_its_log_and_restarts_with_the_same_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FISHCORE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FISHCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FISHCORE_CACHE_DIR", str(tmp_path / "cache"))
    subset = lsfd_subset(tmp_path / "subset", per_class=12)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.switch_page("pages/train_page.py").run()
    at.text_input(key="train_path_box").set_value(str(subset))
    for label, value in (("Epochs", 1000), ("Batch size", 4), ("Image size", 64), ("Early-stopping patience", 1000)):
        next(n for n in at.number_input if n.label == label).set_value(value)
    at.radio(key="setting_mode").set_value("fast")
    at.run()
    next(b for b in at.button if b.label == "Start training").click().run()
    jobs = tmp_path / "runs" / "jobs"
    [first] = [d for d in jobs.iterdir() if d.is_dir()]
    deadline = time.time() + 180
    while time.time() < deadline and Job(first).status().get("phase") != "training":
        time.sleep(0.5)
    os.kill(Job(first).status()["pid"], signal.SIGKILL)
    deadline = time.time() + 60
    while time.time() < deadline:
        at.run()
        if any("Interrupted" in e.value for e in at.error):
            break
        time.sleep(1)
    else:
        pytest.fail(f"no 'interrupted' message: {[e.value for e in at.error]}")
    assert (first / "output.log").is_file()
    next(b for b in at.button if b.label == "Start again with the same settings").click().run()
    assert not at.exception
    second = sorted(d for d in jobs.iterdir() if d.is_dir() and d != first)
    assert len(second) == 1
    assert json.loads((second[0] / "spec.json").read_text()) == json.loads((first / "spec.json").read_text())
    again = Job(second[0])
    again.request_stop(keep=False)
    deadline = time.time() + 120
    while time.time() < deadline and again.active:
        time.sleep(0.5)
    assert again.status()["state"] == "stopped", again.status()
