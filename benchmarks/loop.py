"""`./run.sh bench --loop [ROOT]`: how fast the field loop teaches every phone species the station's model does not know.

A real station (`fishcore serve` in its own process, the bundled LSFD model active) and a simulated phone over HTTP
(no browser): each round the phone photographs a few more fish of each new species (F4K's reef species, split by
track; EGU's river species, split by video, so no near-copy is on both sides), answers each with the model it holds
(the station's model, as the phone's own copy gives the same answers), corrects each answer with the species' name
and syncs (photos the station lacks, then the entries). The station then teaches with activation, exactly as
`fishcore teach --activate --wait` does (training.teaching.teach_and_train: the first round fills the dataset with the
photos the active model was trained on), and the phone asks for the model (If-None-Match with its copy's ETag) and
downloads the new version when the station made one active.

Per round: corrected photos per species so far, photos taught, seconds to teach (training and the comparison) and
for the new model to reach the phone, whether the new version was made active (and why not), and the active
version's accuracy and confident-and-right share on held-out tracks or videos of the new species, and on the old
species' held-out photos (so forgetting shows). Nothing here asserts.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import measured_on, station_process

ROUNDS = (2, 4, 6, 10, 15, 25)  # corrected photos per species, cumulative, after each round
SETS = {"f4k": r"fish_(\d+)_", "egu": r"(\d{8}_\d{6})_"}
EVAL_PER_SPECIES = 40  # held-out photos per new species the active version is scored on


def _split_by_group(paths: list[Path], pattern: str, seed: int) -> tuple[list[Path], list[Path]]:
    """(the phone's photos, held-out photos): whole tracks or videos on one side, about half of the groups each."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for p in paths:
        m = re.search(pattern, p.name)
        groups[m.group(1) if m else p.name].append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    phone, held = [], []
    for i, k in enumerate(keys):
        (phone if i % 2 == 0 else held).extend(sorted(groups[k]))
    rng = random.Random(seed + 1)
    rng.shuffle(phone)  # the phone meets the fish in any order, a track's frames not all at once
    return phone, held


def _score(model_dir: Path, photos: list[tuple[Path, str]]) -> tuple[float, float]:
    """(accuracy, confident-and-right share) of a model version on (photo, species) pairs; species it does not know
    count as wrong."""
    from fishcore.inference.openset import CONFIDENT
    from fishcore.inference.predict import Predictor

    predictor = Predictor.load(model_dir, engine="auto")
    results = predictor.predict([p for p, _ in photos], top_k=1)
    right = [r.label == s for r, (_, s) in zip(results, photos, strict=True)]
    sure = [ok and r.verdict == CONFIDENT for ok, r in zip(right, results, strict=True)]
    return sum(right) / len(photos), sum(sure) / len(photos)


def _old_species_heldout(model_dir: Path) -> list[tuple[Path, str]]:
    """The held-out test photos of the bundled model's species in a version's own split (never trained on)."""
    from fishcore.store.model_files import bundled_model_dir, read_card

    old = set(read_card(bundled_model_dir()).classes)
    card = read_card(model_dir)
    root = card.test_root
    return [(root / rel, Path(rel).parts[0]) for rel in card.split.get("test", ()) if Path(rel).parts[0] in old]


def _phone_entry(path: Path, sha: str, species: str, answer, model_name: str, checksum: str, n: int) -> dict:
    taken = datetime.now(UTC) - timedelta(minutes=600 - n)
    word = {"word": "right", "species": None} if answer.label == species else {"word": "wrong", "species": species}
    return {
        "id": str(uuid.uuid4()), "taken_at": taken.isoformat(), "place": "bench", "model_name": model_name,
        "model_checksum": checksum, "photo_sha256": sha,
        "answer": {"label": answer.label, "confidence": answer.confidence, "verdict": answer.verdict,
                   "reason": answer.reason, "top": [list(t) for t in answer.top], "distance": answer.distance,
                   "distance_threshold": answer.distance_threshold, "candidates": [list(c) for c in answer.candidates],
                   "set_coverage": answer.set_coverage, "threshold": answer.threshold},
        "count": 1, "words": [{**word, "by": "bench phone", "at": (taken + timedelta(seconds=30)).isoformat()}],
    }  # fmt: skip


def run_set(root: Path, name: str, budget: float, seed: int, rounds, log, start_from: Path | None = None) -> list[dict]:
    import httpx

    from fishcore.inference.predict import Predictor
    from fishcore.store.catchlog import CatchLog, dispose_engines
    from fishcore.store.catchlog.devices import Devices
    from fishcore.store.model_files import model_checksum
    from fishcore.store.my_photos import DatasetArea
    from fishcore.store.workspace import Workspace
    from fishcore.training.teaching import teach_and_train

    species_dirs = sorted(d for d in (root / name).iterdir() if d.is_dir())
    phone_photos, eval_photos = {}, []
    for d in species_dirs:
        phone, held = _split_by_group(sorted(d.iterdir()), SETS[name], seed)
        phone_photos[d.name] = phone
        eval_photos += [(p, d.name) for p in held[:: max(1, len(held) // EVAL_PER_SPECIES)][:EVAL_PER_SPECIES]]
    work = Path(tempfile.mkdtemp(prefix=f"fishcore-bench-loop-{name}-"))
    env = {**os.environ, "FISHCORE_SERVER_BURST": "1000", "FISHCORE_SERVER_PER_MINUTE": "100000"}
    for sub in ("models", "runs", "datasets", "catchlog"):
        env[f"FISHCORE_{sub.upper()}_DIR"] = str(work / sub)
        os.environ[f"FISHCORE_{sub.upper()}_DIR"] = str(work / sub)  # this process teaches as the station
    env.pop("FISHCORE_DB_URL", None)
    os.environ.pop("FISHCORE_DB_URL", None)
    ws = Workspace.from_env()
    catch = CatchLog()
    token = Devices(catch).add("bench phone")[1]
    rows = []
    with station_process(env) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                                   timeout=600) as phone:  # fmt: skip
        r = phone.get("/api/v1/model/download")
        etag = r.headers["ETag"]
        active = ws.active_model()
        acc_new, sure_new = _score(active, eval_photos)
        acc_old, sure_old = _score(active, _old_species_heldout(active))
        rows.append({"set": name, "per_species": 0, "taught": 0, "teach_s": None, "reach_s": None,
                     "active": active.name, "decision": "", "new_acc": acc_new, "new_sure": sure_new,
                     "old_acc": acc_old, "old_sure": sure_old})  # fmt: skip
        log(f"{name}: round 0 {active.name} new {acc_new:.3f} old {acc_old:.3f}")
        done = 0
        for per_species in rounds:
            predictor = Predictor.load(active, engine="auto")
            checksum = model_checksum(active)
            batch, photos = [], {}
            for species, paths in phone_photos.items():
                for path in paths[done:per_species]:
                    data = path.read_bytes()
                    sha = hashlib.sha256(data).hexdigest()
                    photos[sha] = data
                    answer = predictor.answer(predictor.predict([path], top_k=3)[0])
                    batch.append(_phone_entry(path, sha, species, answer, active.name, checksum, len(batch)))
            missing = phone.post("/api/v1/photos/missing", json={"sha256": list(photos)}).json()["missing"]
            for sha in missing:
                phone.put(f"/api/v1/photos/{sha}", content=photos[sha]).raise_for_status()
            for i in range(0, len(batch), 20):
                phone.post("/api/v1/sync", json={"entries": batch[i : i + 20]}).raise_for_status()
            done = per_species
            started = time.perf_counter()
            area = DatasetArea(ws.datasets, cache_dir=ws.scans)
            dataset = "loop-field"
            first = None
            if dataset not in area.names():
                from fishcore.store.model_files import read_card

                first = start_from or read_card(active).data_root
            lesson, job = teach_and_train(catch, area, ws.jobs, ws.models, dataset, first, budget, activate=True,
                                          active=active)  # fmt: skip
            status = job.wait()
            teach_s = time.perf_counter() - started
            decision = status.get("decision") or {}
            started = time.perf_counter()
            r = phone.get("/api/v1/model/download", headers={"If-None-Match": etag})
            if r.status_code == 200:
                etag = r.headers["ETag"]
            reach_s = time.perf_counter() - started
            active = ws.active_model()
            acc_new, sure_new = _score(active, eval_photos)
            acc_old, sure_old = _score(active, _old_species_heldout(active))
            rows.append({"set": name, "per_species": per_species, "taught": len(lesson.taught), "teach_s": teach_s,
                         "reach_s": reach_s if r.status_code == 200 else None, "active": active.name,
                         "decision": decision.get("code", status.get("state")), "new_acc": acc_new, "new_sure": sure_new,
                         "old_acc": acc_old, "old_sure": sure_old})  # fmt: skip
            log(f"{name}: {per_species}/species {decision.get('code')} {active.name} new {acc_new:.3f} old {acc_old:.3f} "
                f"teach {teach_s:.0f} s")  # fmt: skip
    dispose_engines()
    shutil.rmtree(work, ignore_errors=True)
    return rows


def run_loop(root: str = "../shared/data", budget: float = 60.0, seed: int = 0, sets=tuple(SETS), rounds=ROUNDS,
             log=lambda _m: None, start_from: Path | None = None) -> str:  # fmt: skip
    """The table; ``start_from``: the photos the first teaching starts from (default: the active model's own, as
    `fishcore teach` does; the tests give a few LSFD species to stay quick)."""
    saved = {k: os.environ.get(k) for k in ("FISHCORE_MODELS_DIR", "FISHCORE_RUNS_DIR", "FISHCORE_DATASETS_DIR",
                                            "FISHCORE_CATCHLOG_DIR", "FISHCORE_DB_URL")}  # fmt: skip
    rows = []
    try:
        for name in sets:
            if name not in SETS:
                raise FileNotFoundError(f"no loop set {name!r}; one of: {', '.join(SETS)}")
            rows += run_set(Path(root), name, budget, seed, rounds, log, start_from)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    lines = [
        measured_on(f"; `./run.sh bench --loop` (teach budget {budget:.0f} s, seed {seed}). The bundled LSFD model "
                    "starts active; a simulated phone over HTTP corrects photos of species it does not know; the "
                    "station teaches with activation after each sync."),
        "",
        "| set | corrected per species | photos taught | teach s | reach the phone s | active version | decision "
        "| new species: right | new: confident and right | old species: right | old: confident and right |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        teach = f"{r['teach_s']:.0f}" if r["teach_s"] is not None else "-"
        reach = f"{r['reach_s']:.2f}" if r["reach_s"] is not None else "-"
        lines.append(f"| {r['set']} | {r['per_species']} | {r['taught']} | {teach} | {reach} | {r['active']} | "
                     f"{r['decision'] or '-'} | {r['new_acc']:.3f} | {r['new_sure']:.3f} | {r['old_acc']:.3f} | "
                     f"{r['old_sure']:.3f} |")  # fmt: skip
    for name in sets:
        hit = next((r["per_species"] for r in rows if r["set"] == name and r["per_species"] and r["new_acc"] >= 0.9), None)
        lines.append("")
        lines.append(
            f"{name}: new species named right 9 times in 10 from {hit} corrected photos per species"
            if hit
            else f"{name}: new species not yet named right 9 times in 10 after {rounds[-1]} corrected photos per species"
        )
    return "\n".join(lines)
