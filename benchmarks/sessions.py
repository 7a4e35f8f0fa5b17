"""`./run.sh bench --sessions [ROOT]`: prediction latency for 8 people at once, with and without training.

The app keeps one predictor per model for all sessions (st.cache_resource) and runs each session's
script in its own thread, so 8 sessions predicting are 8 threads calling that shared predictor with
their own photos. This runs exactly that, on real LSFD photos (decoding included), twice side by side:
alone, then while a training job (a real background job, as the Train page starts) trains on the same
machine, and a third time while the job trains with every answer recorded in a catch log (SQLite, as the
app records it): the time logging adds per photo, and a count of the entries written (each once). It
prints p50 and p95 latency per photo and the throughput. Nothing here asserts a time.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from fishcore.config import TrainConfig
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.runtime import cpu_name
from fishcore.store.catchlog import CatchLog
from fishcore.store.model_files import bundled_model_dir, model_checksum
from fishcore.training.jobs import JobSpec, start_job

SESSIONS = 8
PHOTOS_PER_SESSION = 12


def _photos(root: Path) -> list[Path]:
    return sorted(p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.iterdir())[:12])


def _round(predictor: Predictor, photos: list[Path], log: CatchLog | None = None, logging: list[float] | None = None):
    """8 sessions at once; with ``log``, each answer is also recorded (its seconds appended to ``logging``)."""
    latencies: list[float] = []
    lock = threading.Lock()
    checksum = model_checksum(bundled_model_dir())

    def session(k: int) -> None:
        mine = photos[k * PHOTOS_PER_SESSION : (k + 1) * PHOTOS_PER_SESSION]
        for photo in mine:
            start = time.perf_counter()
            [p] = predictor.predict([photo], top_k=3)
            if log is not None:
                logged = time.perf_counter()
                log.record(photo.read_bytes(), predictor.answer(p), bundled_model_dir().name, checksum, session=f"session {k}")
                with lock:
                    logging.append(time.perf_counter() - logged)
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(SESSIONS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def _row(name: str, latencies: list[float], wall: float) -> str:
    q = statistics.quantiles(latencies, n=20)
    return f"| {name} | {statistics.median(latencies) * 1000:.0f} | {q[18] * 1000:.0f} | {len(latencies) / wall:.1f} |"


def run_sessions(root: str, log=print) -> str:
    lsfd = Path(root).expanduser() / "lsfd"
    photos = _photos(lsfd)[: SESSIONS * PHOTOS_PER_SESSION]
    predictor = Predictor.load(bundled_model_dir(), engine="auto")  # as the app loads it
    predictor.predict(photos[:2])  # warm-up (the engine's one-off export)
    log("8 sessions, no training...")
    alone = _round(predictor, photos)
    with tempfile.TemporaryDirectory(prefix="fishcore-sessions-") as tmp:
        spec = JobSpec(
            data_dir=str(lsfd),
            out_dir=str(Path(tmp) / "m"),
            model=ModelConfig(),
            train=TrainConfig(mode="fast", epochs=1000, patience=1000),
        )
        job = start_job(Path(tmp) / "jobs", spec)
        deadline = time.time() + 600
        while time.time() < deadline and job.status().get("phase") != "training":
            time.sleep(0.5)
        log("8 sessions while a job trains...")
        busy = _round(predictor, photos)
        log("8 sessions while a job trains, every answer logged...")
        folder = Path(tmp) / "catchlog"
        catch, logging = CatchLog(f"sqlite:///{folder / 'catchlog.sqlite'}", folder), []
        logged = _round(predictor, photos, catch, logging)
        entries = catch.entries()
        training_state = job.status().get("phase")
        job.request_stop(keep=False)
        while job.active:
            time.sleep(0.5)
    return "\n".join(
        [
            f"Prediction latency per photo, {SESSIONS} sessions at once, {PHOTOS_PER_SESSION} LSFD photos each, the "
            f"bundled model ({predictor.engine_name}); {cpu_name()}",
            "",
            "| | p50 (ms) | p95 (ms) | photos/s |",
            "|---|---|---|---|",
            _row("no training", *alone),
            _row(f"while a job trains (fast mode; it was {training_state})", *busy),
            _row("while a job trains, each answer logged (SQLite catch log)", *logged),
            "",
            f"Logging alone added p50 {statistics.median(logging) * 1000:.0f} ms and p95 "
            f"{statistics.quantiles(logging, n=20)[18] * 1000:.0f} ms per photo (photo stored by hash, entry written); "
            f"{len(entries)} entries written for {len(photos)} answers, {len({e.id for e in entries})} distinct.",
        ]
    )
