import os
import signal
import time

import pytest

from fishcore.config import DataConfig, ModelConfig, TrainConfig
from fishcore.errors import FishcoreError
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
    names = [e["name"] for e in job.events()]
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
