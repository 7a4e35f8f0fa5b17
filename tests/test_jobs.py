import os
import signal
import time

import pytest

from fishcore.config import DataConfig, TrainConfig
from fishcore.errors import FishcoreError
from fishcore.models.config import ModelConfig
from fishcore.store.model_files import read_card
from fishcore.training.jobs import Job, JobSpec, active_job, list_jobs, start_job

from conftest import make_image_folder


def _spec(tmp_path, epochs=2, patience=6):
    data = make_image_folder(tmp_path / "data", ["a", "b"], 12)
    return JobSpec(
        data_dir=str(data),
        out_dir=str(tmp_path / "models" / "m"),
        data=DataConfig(val_fraction=0.25, test_fraction=0.25),
        model=ModelConfig(pretrained=False, image_size=32, head_width=8),
        train=TrainConfig(epochs=epochs, batch_size=4, val_every=2, patience=patience, mode="fast"),
        notes=["from a job"],
    )


def _wait(job, states, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job.status()
        if status.get("state") in states:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job stuck in {job.status()}; log: {(job.dir / 'output.log').read_text()[-2000:]}")


def test_job_runs_in_its_own_process_and_saves_a_model(tmp_path):
    job = start_job(tmp_path / "jobs", _spec(tmp_path))
    assert job.status()["pid"] != os.getpid()
    with pytest.raises(FishcoreError, match="already running"):
        start_job(tmp_path / "jobs", _spec(tmp_path))
    status = _wait(job, ("finished", "failed"))
    assert status["state"] == "finished", status
    assert read_card(status["model_dir"]).notes == ["from a job"]
    assert status["precision"] == read_card(status["model_dir"]).training.precision in ("bf16", "fp32")
    events = job.events()
    # One stream: the phases' progress, then the training loop's events, then the phases after it.
    phases = [e["phase"] for e in events if e["name"] == "phase"]
    assert phases[0] == "scanning" and phases[-1] == "saving" and "calibrating" in phases
    names = [e["name"] for e in events if e["name"] != "phase"]
    assert names[0] == "train_start" and names[-1] == "train_end" and "validation" in names
    # Another handle on the same folder (a refreshed page, a second tab) sees the same job.
    assert Job(job.dir).status() == status and list_jobs(tmp_path / "jobs")[0].id == job.id
    assert active_job(tmp_path / "jobs") is None


@pytest.mark.parametrize("keep", [True, False])
def test_stop_keeps_the_best_model_or_nothing(tmp_path, keep):
    job = start_job(tmp_path / "jobs", _spec(tmp_path, epochs=10_000, patience=10**6))
    deadline = time.time() + 240
    while not any(e["name"] == "batch_end" for e in job.events()) and time.time() < deadline:
        time.sleep(0.3)
    job.request_stop(keep=keep)
    status = _wait(job, ("stopped", "failed"))
    assert status["state"] == "stopped", status
    assert (status["model_dir"] is not None) == keep and status["saved"] == keep and status["stop_reason"] == "user"
    assert os.path.isdir(tmp_path / "models" / "m") == keep


def test_a_killed_worker_is_reported_as_failed(tmp_path):
    job = start_job(tmp_path / "jobs", _spec(tmp_path, epochs=10_000, patience=10**6))
    _wait(job, ("running",))
    os.kill(job.status()["pid"], signal.SIGKILL)
    status = _wait(job, ("failed",), timeout=30)
    assert status["error"]["code"] == "process_died"


def test_a_bad_dataset_fails_with_its_reason(tmp_path):
    spec = _spec(tmp_path)
    spec.data_dir = str(tmp_path / "nowhere")
    status = _wait(start_job(tmp_path / "jobs", spec), ("failed", "finished"))
    assert status["state"] == "failed" and status["error"]["code"] == "bad_dataset"
    assert "not found" in status["error"]["text"] and status["phase"] == "done"


def test_simultaneous_starts_from_two_processes_start_one_job(tmp_path):
    """Two processes asking at the same moment: one job starts, the other is told one is running."""
    import json
    import subprocess
    import sys

    spec = _spec(tmp_path, epochs=10_000, patience=10**6)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    go = time.time() + 3  # both processes are up by then and start in the same instant
    script = (
        "import json, sys, time\n"
        "from fishcore.errors import FishcoreError\n"
        "import fishcore.training.jobs as jobs\n"
        "from fishcore.training.jobs import JobSpec, start_job\n"
        "check = jobs.active_job\n"
        "# a slow check (a busy disk): without the lock both processes would pass it before either starts\n"
        "jobs.active_job = lambda root: (check(root), time.sleep(1.0))[0]\n"
        "spec = JobSpec.from_dict(json.load(open(sys.argv[1])))\n"
        "time.sleep(max(0.0, float(sys.argv[3]) - time.time()))\n"
        "try:\n"
        "    print('started', start_job(sys.argv[2], spec).id)\n"
        "except FishcoreError as exc:\n"
        "    print('refused', exc)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(spec_file), str(tmp_path / "jobs"), str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
        assert outputs[0].startswith("refused a training job is already running"), outputs
        assert outputs[1].startswith("started"), outputs
        assert len(list_jobs(tmp_path / "jobs")) == 1
    finally:  # never leave an endless training job behind, also when the test fails
        for job in list_jobs(tmp_path / "jobs"):
            job.request_stop(keep=False)
        for job in list_jobs(tmp_path / "jobs"):
            _wait(job, ("stopped", "failed", "finished"))
