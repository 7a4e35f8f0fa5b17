"""`./run.sh bench --serve [ROOT]`: the field server under load, through a real server process and real HTTP clients.

16 devices each sync 50 entries with their photos at once (ask which photos are missing, send those, send the
entries in batches of 10), while 8 clients predict real photos one per request. It prints entries per second,
p50/p95 latency of each kind of request, and beside them the in-process cost of recording one entry in the
catch log (CatchLog.record, as the app's Predict page does), and checks that the log holds every entry once.
Nothing here asserts a time. ROOT: the shared data folder (its lsfd/ photos are the devices' photos).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import measured_on, station_process
from fishcore.inference.predict import Predictor
from fishcore.store.catchlog import CatchLog, dispose_engines
from fishcore.store.catchlog.devices import Devices
from fishcore.store.model_files import bundled_model_dir, model_checksum

DEVICES, ENTRIES, BATCH = 16, 50, 10
PREDICTORS, PREDICTIONS = 8, 12


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def _entry(photo_sha: str, n: int, checksum: str) -> dict:
    taken = datetime(2026, 12, 4, 6, 0, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "id": str(uuid.uuid4()), "taken_at": taken.isoformat(), "place": "Muara Angke", "model_name": "lsfd_mobilenet_v2",
        "model_checksum": checksum, "photo_sha256": photo_sha,
        "answer": {"label": "Trout", "confidence": 0.9, "verdict": "confident", "reason": "known",
                   "top": [["Trout", 0.9], ["Sea Bass", 0.05]], "candidates": [["Trout", 0.9]], "set_coverage": 0.9,
                   "threshold": 0.6},
        "count": 1, "words": [{"word": "right", "by": "bench", "at": (taken + timedelta(minutes=1)).isoformat()}],
    }  # fmt: skip


def run_serve(root: str = "../shared/data", log=lambda _m: None) -> str:
    import httpx

    lsfd = Path(root) / "lsfd"
    photos = sorted(p for d in sorted(lsfd.iterdir()) if d.is_dir() for p in sorted(d.iterdir())[:100])
    need = DEVICES * ENTRIES + PREDICTORS * PREDICTIONS
    if len(photos) < need:
        raise FileNotFoundError(f"{lsfd} has {len(photos)} photos; the bench needs {need}")
    checksum = model_checksum(bundled_model_dir())
    work = Path(tempfile.mkdtemp(prefix="fishcore-bench-serve-"))
    env = {**os.environ, "FISHCORE_SERVER_BURST": "1000", "FISHCORE_SERVER_PER_MINUTE": "100000"}
    for sub in ("models", "runs", "cache", "datasets", "catchlog"):
        env[f"FISHCORE_{sub.upper()}_DIR"] = str(work / sub)
    env.pop("FISHCORE_DB_URL", None)
    catch = CatchLog(None, work / "catchlog")
    devices = Devices(catch)
    tokens = [devices.add(f"device {k}")[1] for k in range(DEVICES)]
    predict_token = devices.add("predict clients")[1]
    with station_process(env) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {predict_token}"}) as warm:
            warm.post("/api/v1/predict", files={"photos": ("w.jpg", photos[-1].read_bytes(), "image/jpeg")}, timeout=300)
        log(f"server up on {url}; {DEVICES} devices x {ENTRIES} entries, {PREDICTORS} predict clients x {PREDICTIONS}")
        timings: dict[str, list[float]] = {"sync": [], "photo": [], "missing": [], "predict": []}
        lock = threading.Lock()
        failures: list[str] = []

        def timed(kind: str, call):
            start = time.perf_counter()
            response = call()
            with lock:
                timings[kind].append(time.perf_counter() - start)
            if response.status_code >= 400:
                failures.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return response

        def device(k: int) -> None:
            mine = photos[k * ENTRIES : (k + 1) * ENTRIES]
            data = [p.read_bytes() for p in mine]
            shas = [hashlib.sha256(d).hexdigest() for d in data]
            entries = [_entry(sha, n, checksum) for n, sha in enumerate(shas)]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[k]}"}, timeout=300) as client:
                missing = timed("missing", lambda: client.post("/api/v1/photos/missing", json={"sha256": shas})).json()["missing"]
                by_sha = dict(zip(shas, data, strict=True))
                for sha in missing:
                    timed("photo", lambda sha=sha: client.put(f"/api/v1/photos/{sha}", content=by_sha[sha]))
                for i in range(0, ENTRIES, BATCH):
                    timed("sync", lambda i=i: client.post("/api/v1/sync", json={"entries": entries[i : i + BATCH]}))

        def predictor(k: int) -> None:
            start = DEVICES * ENTRIES + k * PREDICTIONS
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {predict_token}"}, timeout=300) as client:
                for p in photos[start : start + PREDICTIONS]:
                    files = {"photos": (p.name, p.read_bytes(), "image/jpeg")}
                    timed("predict", lambda files=files: client.post("/api/v1/predict", files=files))

        threads = [threading.Thread(target=device, args=(k,)) for k in range(DEVICES)]
        threads += [threading.Thread(target=predictor, args=(k,)) for k in range(PREDICTORS)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        stored = catch.entries()
        once = len({e.id for e in stored}) == len(stored) == DEVICES * ENTRIES
    # The in-process cost of recording one entry, as the app's Predict page does (photo stored, row written).
    local = CatchLog(None, work / "local")
    predictor_ = Predictor.load(bundled_model_dir())
    [answer] = predictor_.predict([photos[0]])
    record_times = []
    for p in photos[:60]:
        data = p.read_bytes()
        start = time.perf_counter()
        local.record(data, predictor_.answer(answer), bundled_model_dir().name, checksum)
        record_times.append(time.perf_counter() - start)
    dispose_engines()
    rows = [
        ("sync, 10 entries per request", timings["sync"]),
        ("photo upload, one per request", timings["photo"]),
        ("which photos are missing (50 hashes)", timings["missing"]),
        ("predict, one photo per request", timings["predict"]),
    ]
    what = (f"; `./run.sh bench --serve`: {DEVICES} devices syncing {ENTRIES} entries each with their photos while "
            f"{PREDICTORS} clients predict, one server process (uvicorn), SQLite catch log")  # fmt: skip
    lines = [
        measured_on(what),
        "",
        "| request | requests | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *(f"| {name} | {len(t)} | {1000 * _pct(t, 0.5):.0f} | {1000 * _pct(t, 0.95):.0f} |" for name, t in rows),
        "",
        f"{DEVICES * ENTRIES} entries with {DEVICES * ENTRIES} photos and {PREDICTORS * PREDICTIONS} predictions in "
        f"{wall:.1f} s: {DEVICES * ENTRIES / wall:.0f} entries per second with their photos; every entry once: "
        f"{'yes' if once else 'NO'} ({len(stored)} stored); refused requests: {len(failures)}"
        + (f" (first: {failures[0]})" if failures else ""),
        f"In-process, recording one entry (photo and row, SQLite, as the Predict page does): "
        f"median {1000 * statistics.median(record_times):.1f} ms.",
    ]
    return "\n".join(lines)
