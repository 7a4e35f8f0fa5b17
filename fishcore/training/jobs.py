"""Training as a background job: its own process, its state on disk, stoppable from anywhere.

A web page only watches a job: refreshing, navigating away, a second tab or even restarting the app
neither stops nor duplicates it, because everything about it lives in its folder:

    spec.json     what to train (data folder, output folder, configs)
    status.json   state, phase, progress, result; rewritten atomically
    events.jsonl  the training events, one JSON line each (the same log the CLI writes)
    stop          present when a stop was requested; its text says "keep" or "discard"
    output.log    the worker's stdout/stderr, for diagnosing a crash
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from fishcore.config import DataConfig, TrainConfig, from_dict, to_dict
from fishcore.errors import FishcoreError
from fishcore.events import EventName, Phase, StopReason, TrainEvent
from fishcore.models.config import ModelConfig
from fishcore.settings import Paths
from fishcore.store.jsonfile import read_json, write_json
from fishcore.training.run import RunOptions, TrainingRun

ACTIVE_STATES = ("starting", "running", "stopping")
FINAL_STATES = ("finished", "stopped", "failed")
# The folder `import fishcore` is found in, so the worker process imports this same copy of the library.
_IMPORT_ROOT = Path(__import__("fishcore").__file__).resolve().parent.parent
_WORKER_MODULE = "fishcore.training.jobs"


JOB_KINDS = ("train", "compare")


@dataclass
class JobSpec:
    """Everything a job needs, as plain data.

    kind "train": train_folder into out_dir. kind "compare": training/compare.py on one split (data.seed,
    data.group_pattern), seconds_per_network of training for each network, results in out_dir.
    """

    data_dir: str
    out_dir: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    notes: list[str] = field(default_factory=list)
    kind: str = "train"
    seconds_per_network: float = 30.0  # kind "compare" only
    # kind "train" taught from the catch log (training.teaching.teach_and_train): what to judge the new version
    # against and whether to make it active when it is at least as good; None for any other training.
    teach: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise FishcoreError(f"unknown job kind {self.kind!r}; one of: {', '.join(JOB_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "out_dir": self.out_dir,
            "data": to_dict(self.data),
            "model": to_dict(self.model),
            "train": to_dict(self.train),
            "notes": self.notes,
            "kind": self.kind,
            "seconds_per_network": self.seconds_per_network,
            "teach": self.teach,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(
            data_dir=d["data_dir"],
            out_dir=d["out_dir"],
            data=from_dict(DataConfig, d.get("data")),
            model=from_dict(ModelConfig, d.get("model")),
            train=from_dict(TrainConfig, d.get("train")),
            notes=list(d.get("notes", [])),
            kind=d.get("kind", "train"),
            # A comparison started before 2026-12-04 kept its seconds per network in train.budget.
            seconds_per_network=float(d.get("seconds_per_network", (d.get("train") or {}).get("budget", 30.0))),
            teach=d.get("teach"),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Job:
    """A handle on a job folder; every method reads the disk, so any process or page can use it."""

    def __init__(self, job_dir: str | os.PathLike) -> None:
        self.dir = Path(job_dir)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def spec(self) -> JobSpec:
        return JobSpec.from_dict(read_json(self.dir / "spec.json"))

    def wait(self, poll: float = 0.5) -> dict[str, Any]:
        """Block until the job has ended; its final status."""
        while True:
            status = self.status()
            if status.get("state") in FINAL_STATES:
                return status
            time.sleep(poll)

    def status(self) -> dict[str, Any]:
        """The job's status; a job whose process vanished without saying so is reported as failed."""
        status = read_json(self.dir / "status.json")
        if status.get("state") in ACTIVE_STATES and not self._process_alive(status):
            # Re-read: the worker may have written its final state just now.
            status = read_json(self.dir / "status.json")
            if status.get("state") in ACTIVE_STATES:
                status = {**status, "state": "failed", "phase": Phase.DONE, "error": {"code": "process_died", "params": {}}}
                write_json(self.dir / "status.json", status)
        return status

    def _process_alive(self, status: dict) -> bool:
        pid = status.get("pid")
        if not pid:
            # Not started yet: give the launcher a few seconds to record the pid.
            return time.time() - (self.dir / "spec.json").stat().st_mtime < 30
        # One glance is not enough to declare a worker dead (a full CI run once saw a just-launched worker
        # refused for a moment, and a second job started beside it): look again a fifth of a second later.
        if self._is_worker(pid):
            return True
        time.sleep(0.2)
        return self._is_worker(pid)

    def _is_worker(self, pid: int) -> bool:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            command = proc.cmdline()
        except psutil.AccessDenied:
            return True  # a process we may not inspect exists under that pid; assume it is ours
        except psutil.Error:
            return False
        # The worker is recognised by its command line (module and job folder), not by its start time:
        # a wall clock stepped by time sync made start-time comparisons declare live workers dead.
        return _WORKER_MODULE in command and any(Path(arg).name == self.id for arg in command)

    @property
    def active(self) -> bool:
        return self.status().get("state") in ACTIVE_STATES

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Training events from line number `since` on (a partly written last line is skipped)."""
        path = self.dir / "events.jsonl"
        if not path.is_file():
            return []
        out = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i < since or not line.endswith("\n"):
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def request_stop(self, keep: bool = True) -> None:
        """Ask the worker to stop after its current batch, keeping the best model so far or nothing."""
        (self.dir / "stop").write_text("keep" if keep else "discard", encoding="utf-8")

    def stop_requested(self) -> str | None:
        path = self.dir / "stop"
        return path.read_text(encoding="utf-8").strip() or "keep" if path.is_file() else None


def _job_root(root: str | os.PathLike) -> Path:
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def list_jobs(root: str | os.PathLike) -> list[Job]:
    """Jobs under root, newest first."""
    path = Path(root)
    if not path.is_dir():
        return []
    return [Job(p) for p in sorted(path.iterdir(), reverse=True) if (p / "spec.json").is_file()]


def active_job(root: str | os.PathLike) -> Job | None:
    return next((job for job in list_jobs(root) if job.active), None)


@contextlib.contextmanager
def _start_lock(root: Path):
    """One start at a time under root, across processes: "is one running?" and "start one" are one step."""
    with open(root / ".start.lock", "a+b") as f:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if os.name == "nt":
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(f, fcntl.LOCK_UN)


def start_job(root: str | os.PathLike, spec: JobSpec) -> Job:
    """Launch a training worker process; refuses while another job under root is running.

    The check and the launch hold a lock file together, so two requests at the same moment (two
    sessions, two processes) start one job and tell the other that a job is running.
    """
    with _start_lock(_job_root(root)):
        return _start_unlocked(root, spec)


def _start_unlocked(root: str | os.PathLike, spec: JobSpec) -> Job:
    running = active_job(root)
    if running is not None:
        raise FishcoreError(f"a training job is already running ({running.id}); stop it or wait for it to finish")
    job_dir = _job_root(root) / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    job_dir.mkdir()
    write_json(job_dir / "spec.json", spec.to_dict())
    write_json(job_dir / "status.json", {"state": "starting", "created": _now(), "phase": Phase.STARTING})
    home = Paths.from_env().home
    pythonpath = os.pathsep.join(filter(None, [str(_IMPORT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "FISHCORE_HOME": str(home)}
    with open(job_dir / "output.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", _WORKER_MODULE, str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
            env=env,
            start_new_session=True,  # survives the app being stopped with Ctrl-C
        )
    status = {"state": "starting", "created": _now(), "phase": Phase.STARTING, "pid": proc.pid}
    # The worker may already have written a newer status; only fill in the pid if it has not.
    current = read_json(job_dir / "status.json")
    if current.get("state") == "starting" and "pid" not in current:
        write_json(job_dir / "status.json", status)
    return Job(job_dir)


class JobStatus:
    """A job's status.json kept up to date from its run's event stream (at most twice a second, and at each change of state)."""

    def __init__(self, job: Job, follow_training: bool = True) -> None:
        # A comparison's progress is its rows (PHASE events); its networks' own steps would overwrite it.
        self.follow_training = follow_training
        self.path = job.dir / "status.json"
        self.status: dict[str, Any] = {
            "state": "running",
            "phase": Phase.SCANNING,
            "pid": os.getpid(),
            "started": _now(),
            "created": read_json(self.path).get("created", _now()),
        }
        self._last_write = 0.0
        self._lock = threading.Lock()

    def update(self, force: bool = False, **changes: Any) -> None:
        with self._lock:
            self.status.update(changes)
            self.status["updated"] = _now()
            if force or time.monotonic() - self._last_write > 0.5:
                write_json(self.path, self.status)
                self._last_write = time.monotonic()

    def __call__(self, e: TrainEvent) -> None:
        if e.name == EventName.PHASE:
            self.update(phase=e.phase, done=e.done, total=e.total, force=e.done == e.total)
        elif not self.follow_training:
            return
        elif e.name == EventName.TRAIN_START:
            self.update(phase=Phase.TRAINING, done=0, total=e.total_iterations, force=True)
        elif e.name == EventName.BATCH_END:
            self.update(done=e.iteration, total=e.total_iterations, elapsed=e.elapsed, eta=e.eta, epoch=e.epoch)
        elif e.name == EventName.TRAIN_END:
            self.update(done=e.iteration, eta=0, force=True)


def _watch_stop_file(job: Job, run: TrainingRun, status: JobStatus, finished: threading.Event) -> None:
    """A stop request is noticed within a fifth of a second in any phase, not only between batches."""
    while not finished.wait(0.2):
        asked = job.stop_requested()
        if asked and not run.stop_requested:
            run.request_stop(keep=asked != "discard")
            status.update(state="stopping", force=True)
        elif asked and run.keep_on_stop != (asked != "discard"):
            run.request_stop(keep=asked != "discard")  # changed its mind: keep or discard, the latest word counts


def run_job(job_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> int:
    """Worker side: run the spec'd training, keeping status.json up to date. Returns an exit code."""
    job = Job(job_dir)
    spec = job.spec
    status = JobStatus(job, follow_training=spec.kind == "train")
    options = RunOptions(out_dir=spec.out_dir, cache_dir=str(cache_dir) if cache_dir else None,
                         events_path=str(job.dir / "events.jsonl"), notes=tuple(spec.notes))  # fmt: skip
    run = TrainingRun(spec.data, spec.model, spec.train, options, listeners=[status])
    finished = threading.Event()
    status.update(force=True)
    threading.Thread(target=_watch_stop_file, args=(job, run, status, finished), daemon=True).start()
    try:
        if job.stop_requested():
            status.update(state="stopped", phase=Phase.DONE, stop_reason=StopReason.USER, saved=False, force=True)
            return 0
        final = _run_compare(spec, run) if spec.kind == "compare" else _run_training(spec, run)
        finished.set()
        status.update(phase=Phase.DONE, force=True, **final)
        return 0
    except FishcoreError as exc:
        finished.set()
        error = {"code": exc.code, "params": _plain(exc.params), "text": str(exc)}
        status.update(state="failed", phase=Phase.DONE, error=error, force=True)
        return 2
    except BaseException as exc:  # a crash must still end in a readable state
        finished.set()
        traceback.print_exc()
        error = {"code": "crash", "params": {"type": type(exc).__name__}, "text": str(exc)}
        status.update(state="failed", phase=Phase.DONE, error=error, force=True)
        return 1


def _run_training(spec: JobSpec, run: TrainingRun) -> dict[str, Any]:
    from fishcore.training.pipeline import train_folder

    outcome = train_folder(spec.data_dir, run)
    result, card = outcome.result, outcome.card
    decision = None
    if spec.teach is not None and outcome.model_dir is not None and result.stop_reason != StopReason.USER:
        from fishcore.training.versions import conclude_teaching

        try:
            decision = conclude_teaching(spec.teach, outcome.model_dir)
        except FishcoreError as exc:  # the version is saved; only the comparison could not be made
            decision = {"activate": False, "activated": False, "code": "error", "sentence": str(exc)}
    return {
        "decision": decision,
        "state": "stopped" if result.stop_reason == StopReason.USER else "finished",
        "stop_reason": str(result.stop_reason),
        "saved": outcome.model_dir is not None,
        "model_dir": str(outcome.model_dir) if outcome.model_dir else None,
        "test": outcome.test_report.summary() if outcome.test_report else None,
        "seconds": card.training.total_seconds if card else None,
        "mode": card.training.mode if card else None,
        "recipe": card.training.recipe if card else None,
        "precision": card.training.precision if card else None,
    }


def _run_compare(spec: JobSpec, run: TrainingRun) -> dict[str, Any]:
    from fishcore.training.compare import compare

    comparison = compare(spec.data_dir, spec.out_dir, spec.seconds_per_network, spec.data.seed, spec.data, run=run)
    return {
        "state": "finished" if comparison.finished else "stopped",
        "stop_reason": str(StopReason.COMPLETED if comparison.finished else StopReason.USER),
        "saved": bool(comparison.rows),
        "model_dir": str(spec.out_dir),
    }


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Error parameters as JSON-safe values."""
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v) for k, v in params.items()}


if __name__ == "__main__":
    sys.exit(run_job(sys.argv[1]))
