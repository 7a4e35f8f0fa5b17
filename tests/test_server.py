"""The field server through a real uvicorn process on localhost and a real HTTP client (httpx), on SQLite and on
PostgreSQL: tokens, predictions equal to `fishcore predict --json`, idempotent sync (also cut off half way and
after kill -9), corrections sent back, the model download, and bad input refused with the field named."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fishcore.store.catchlog import CatchLog, dispose_engines, to_csv
from fishcore.store.catchlog.devices import Devices
from fishcore.store.model_files import bundled_model_dir, model_checksum
from fishcore.store.samples import sample_photos

from conftest import REPO, _free_port, class_image, png_with_size

CHECKSUM = model_checksum(bundled_model_dir())


class Server:
    """`python -m fishcore serve` in its own process, on a free port, over a workspace in tmp_path."""

    def __init__(self, home: Path, db_url: str | None, *args: str) -> None:
        self.home, self.port, self.args = home, _free_port(), args
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "FISHCORE_HOME": str(REPO)}
        # Its own models, jobs, photos and catch log; the suite's cache (features, exported networks, phone packages:
        # all keyed by content), as every station on one machine would share its cache.
        for sub in ("models", "runs", "datasets", "catchlog"):
            self.env[f"FISHCORE_{sub.upper()}_DIR"] = str(home / sub)
        self.env.pop("FISHCORE_DB_URL", None)
        if db_url:
            self.env["FISHCORE_DB_URL"] = db_url
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def log(self) -> CatchLog:
        return CatchLog(self.env.get("FISHCORE_DB_URL"), self.home / "catchlog")

    def start(self) -> Server:
        out = open(self.home / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "fishcore", "serve", "--port", str(self.port), *self.args],
                                     cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError("the server did not start:\n" + (self.home / f"server-{self.port}.log").read_text()[-3000:])

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class InProcess(Server):
    """The same application in this process, called through an ASGI test client: for what does not depend on the
    server being a process of its own (validation, tokens, limits, the answers). Same workspace layout as Server;
    ``start`` builds the app, ``stop`` forgets it."""

    def __init__(self, home: Path, db_url: str | None, **config) -> None:
        super().__init__(home, db_url)
        self.config = config
        self.app = None

    def start(self) -> InProcess:
        from fishcore.server.app import create_app
        from fishcore.server.config import ServerConfig
        from fishcore.server.station import Station
        from fishcore.store.workspace import Workspace

        env = self.env
        workspace = Workspace(home=REPO, models=Path(env["FISHCORE_MODELS_DIR"]), runs=Path(env["FISHCORE_RUNS_DIR"]),
                              cache=Path(env["FISHCORE_CACHE_DIR"]), default_data=None,
                              datasets=Path(env["FISHCORE_DATASETS_DIR"]), catchlog=self.home / "catchlog")  # fmt: skip
        self.app = create_app(Station(ServerConfig(**self.config), log=self.log(), workspace=workspace))
        return self

    def stop(self) -> None:
        self.app = None


def _postgres_url(request) -> str:
    """A new, empty database on the suite's PostgreSQL server."""
    import psycopg

    pg = request.getfixturevalue("postgres_server")
    name = f"s{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=fishcore dbname=fishcore", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


def _station(kind, request, tmp_path):
    server = kind(tmp_path, _postgres_url(request) if request.param == "postgresql" else None)
    _, server.token = Devices(server.log()).add("Muara Angke")
    server.start()
    return server


@pytest.fixture(params=["sqlite", "postgresql"])
def station(request, tmp_path):
    """The application in this process, on SQLite and on PostgreSQL, with one device's token."""
    server = _station(InProcess, request, tmp_path)
    yield server
    server.stop()
    dispose_engines()


@pytest.fixture(params=["sqlite", "postgresql"])
def real_station(request, tmp_path):
    """`fishcore serve` as a process of its own: where the process matters (kill -9, requests racing each other)."""
    server = _station(Server, request, tmp_path)
    yield server
    server.stop()
    dispose_engines()


def _client(server: Server, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or server.token}"} if token is not False else {}
    if isinstance(server, InProcess):
        from fastapi.testclient import TestClient

        return TestClient(server.app, headers=headers)
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    class_image(seed % 3, seed, 64).save(buf, "JPEG")
    return buf.getvalue()


def _entry(photo: bytes, n: int = 0, **changes) -> dict:
    taken = datetime(2026, 12, 4, 6, 0, tzinfo=UTC) + timedelta(minutes=n)
    entry = {
        "id": str(uuid.uuid4()),
        "taken_at": taken.isoformat(),
        "place": "Muara Angke",
        "model_name": "lsfd_mobilenet_v2",
        "model_checksum": CHECKSUM,
        "photo_sha256": hashlib.sha256(photo).hexdigest(),
        "answer": {
            "label": "Trout", "confidence": 0.91, "verdict": "confident", "reason": "known",
            "top": [["Trout", 0.91], ["Sea Bass", 0.05]], "distance": 0.1, "distance_threshold": 0.3,
            "candidates": [["Trout", 0.91]], "set_coverage": 0.9, "threshold": 0.6,
        },
        "count": 2,
        "weight_kg": 1.5,
        "words": [{"word": "right", "by": "Budi", "at": (taken + timedelta(minutes=1)).isoformat()}],
    }
    entry.update(changes)
    return entry


def _sync(client: httpx.Client, photos: list[bytes], entries: list[dict], batch: int = 10) -> list[httpx.Response]:
    """What a device does: ask which photos are missing, send those, send the entries in batches."""
    shas = [hashlib.sha256(p).hexdigest() for p in photos]
    missing = client.post("/api/v1/photos/missing", json={"sha256": shas})
    assert missing.status_code == 200, missing.text
    by_sha = dict(zip(shas, photos, strict=True))
    for sha in missing.json()["missing"]:
        put = client.put(f"/api/v1/photos/{sha}", content=by_sha[sha], headers={"Content-Type": "image/jpeg"})
        assert put.status_code in (200, 201), put.text
    return [client.post("/api/v1/sync", json={"entries": entries[i : i + batch]}) for i in range(0, len(entries), batch)]


def test_a_device_syncs_is_cut_off_and_syncs_again_and_each_entry_is_there_once(station):
    photos = [_jpeg(i) for i in range(12)]
    entries = [_entry(p, n) for n, p in enumerate(photos)]
    with _client(station) as client:
        first = _sync(client, photos[:5], entries[:5], batch=5)  # cut off: only the first five got through
        assert first[0].status_code == 200 and len(first[0].json()["added"]) == 5
        again = _sync(client, photos, entries, batch=5)  # the device sends everything again
        assert all(r.status_code == 200 for r in again), [r.text for r in again]
        assert sum(len(r.json()["already"]) for r in again) == 5 and sum(len(r.json()["added"]) for r in again) == 7
        twice = _sync(client, photos, entries)  # and once more: nothing new
        assert sum(len(r.json()["added"]) for r in twice) == 0 and sum(r.json()["words_added"] for r in twice) == 0
    log = station.log()
    got = {e.id: e for e in log.entries()}
    assert set(got) == {e["id"] for e in entries}
    for e in entries:
        entry = got[e["id"]]
        assert entry.device == "Muara Angke" and entry.word == "right" and entry.word_by == "Budi"
        assert entry.count == 2 and entry.weight_kg == 1.5 and entry.place == "Muara Angke"
        assert log.photo_path(e["photo_sha256"]).read_bytes() == photos[entries.index(e)]
        assert len(log.history(e["id"])) == 1
    csv = to_csv(log.entries()).splitlines()
    assert csv[0].split(",")[-1] == "device" and all(line.endswith(",Muara Angke") for line in csv[1:])


def test_a_word_given_later_on_the_phone_and_a_correction_at_the_station_travel_both_ways(station):
    photo = _jpeg(1)
    entry = _entry(photo)
    with _client(station) as client:
        assert _sync(client, [photo], [entry])[0].status_code == 200
        before = client.get("/api/v1/sync/changes").json()["server_time"]
        # On the phone the fisherman changes his mind: the entry comes again with a second word.
        later = datetime.fromisoformat(entry["words"][0]["at"]) + timedelta(hours=1)
        entry["words"].append({"word": "wrong", "species": "Kakap merah", "by": "Budi", "at": later.isoformat()})
        r = client.post("/api/v1/sync", json={"entries": [entry]}).json()
        assert r["already"] == [entry["id"]] and r["words_added"] == 1
        log = station.log()
        assert (log.get(entry["id"]).word, log.get(entry["id"]).true_species) == ("wrong", "Kakap merah")
        # At the station someone corrects it again; the device fetches the change back.
        log.set_word(entry["id"], "wrong", "Kakap putih", who="station")
        changed = client.get("/api/v1/sync/changes", params={"since": before}).json()["changes"]
        assert [(c["id"], c["word"], c["species"]) for c in changed] == [(entry["id"], "wrong", "Kakap putih")]
        assert len(log.history(entry["id"])) == 3


def test_without_a_valid_token_nothing_is_read_and_nothing_is_written(station):
    photo = _jpeg(2)
    entry = _entry(photo)
    devices = Devices(station.log())
    _, other = devices.add("Cilincing")
    devices.revoke("Cilincing")
    for token in (False, "not-a-token", other):
        with _client(station, token) as client:
            for method, path, kwargs in (
                ("post", "/api/v1/sync", {"json": {"entries": [entry]}}),
                ("put", f"/api/v1/photos/{entry['photo_sha256']}", {"content": photo}),
                ("post", "/api/v1/photos/missing", {"json": {"sha256": [entry["photo_sha256"]]}}),
                ("get", "/api/v1/sync/changes", {}),
                ("get", "/api/v1/model", {}),
                ("get", "/api/v1/model/download", {}),
                ("post", "/api/v1/model/update", {"json": {"have": []}}),
                ("post", "/api/v1/predict", {"files": {"photos": ("a.jpg", photo, "image/jpeg")}}),
            ):
                r = getattr(client, method)(path, **kwargs)
                assert r.status_code == 401, (token, path, r.text)
                assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert station.log().entries() == [] and not list((station.home / "catchlog" / "photos").rglob("*.jpg"))


BAD = [
    ("place", "x" * 10_000, "entries[0].place"),
    ("weight_kg", -3, "entries[0].weight_kg"),
    ("count", 0, "entries[0].count"),
    ("model_checksum", "a" * 64, "entries[0].model_checksum"),
    ("words", [{"word": "wrong", "species": "a/b", "at": "2026-12-04T06:00:00+00:00"}], "entries[0].words[0].species"),
    ("taken_at", "yesterday", "entries[0].taken_at"),
    ("id", "not-a-uuid", "entries[0].id"),
]


@pytest.mark.parametrize("field, value, where", BAD, ids=[b[0] for b in BAD])
def test_a_bad_entry_is_refused_with_its_field_and_nothing_is_written(field, value, where, tmp_path):
    server = InProcess(tmp_path, None)
    _, server.token = Devices(server.log()).add("Muara Angke")
    server.start()
    try:
        photo = _jpeg(3)
        good = _entry(photo, 0)
        with _client(server) as client:
            assert client.put(f"/api/v1/photos/{good['photo_sha256']}", content=photo).status_code == 201
            r = client.post("/api/v1/sync", json={"entries": [_entry(photo, 1, **{field: value}), good]})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == where and r.json()["reason"], r.json()
        assert server.log().entries() == []  # the good entry of the batch is not written either
    finally:
        server.stop()
        dispose_engines()


def test_bad_requests_get_a_json_4xx_naming_the_field(station, tmp_path):
    with _client(station) as client:
        r = client.post("/api/v1/sync", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["error"] == "invalid", r.text
        text = b"this is not a photo"
        r = client.put(f"/api/v1/photos/{hashlib.sha256(text).hexdigest()}", content=text)
        assert r.status_code == 422 and r.json()["error"] == "bad_photo" and "text file" in r.json()["reason"], r.text
        bomb = png_with_size(20_000, 20_000)  # 400 megapixels in a few bytes
        r = client.put(f"/api/v1/photos/{hashlib.sha256(bomb).hexdigest()}", content=bomb)
        assert r.status_code == 422 and "decompression bomb" in r.json()["reason"], r.text
        r = client.put(f"/api/v1/photos/{'0' * 64}", content=_jpeg(4))
        assert r.status_code == 422 and r.json()["field"] == "sha256"
        r = client.post("/api/v1/predict", files={"photos": ("bomb.png", bomb, "image/png")})
        assert r.status_code == 422 and r.json()["field"] == "photos[0]", r.text
        r = client.post("/api/v1/predict", files={"photos": ("a.jpg", _jpeg(5), "image/jpeg")},
                        data={"record": "true", "weight_kg": "-3"})  # fmt: skip
        assert r.status_code == 422 and r.json()["field"] == "weight_kg", r.text
        huge = b"\xff" * (33 * 2**20)
        r = client.put(f"/api/v1/photos/{hashlib.sha256(huge).hexdigest()}", content=huge)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert station.log().entries() == []


def test_too_many_requests_from_one_token_get_429_and_others_are_not_slowed(tmp_path):
    server = InProcess(tmp_path, None, per_minute=60, burst=5)
    devices = Devices(server.log())
    _, server.token = devices.add("Muara Angke")
    _, other = devices.add("Cilincing")
    server.start()
    try:
        with _client(server) as client:
            codes = [client.get("/api/v1/sync/changes").status_code for _ in range(8)]
            assert codes[:5] == [200] * 5 and 429 in codes[5:], codes
            r = client.get("/api/v1/sync/changes")
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "too_many_requests"
        with _client(server, other) as client:
            assert client.get("/api/v1/sync/changes").status_code == 200
    finally:
        server.stop()
        dispose_engines()


def test_predictions_over_http_equal_fishcore_predict_json_and_are_recorded_when_asked(station):
    photos = [s.path for s in sample_photos()][:6]
    cli = subprocess.run([sys.executable, "-m", "fishcore", "predict", "default", *map(str, photos), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=station.env)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    with _client(station) as client:
        files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
        r = client.post("/api/v1/predict", files=files, data={"record": "true", "place": "Muara Angke", "count": "3"})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["model_checksum"] == CHECKSUM and len(got["entries"]) == len(photos)
        for a, b in zip(expected, got["photos"], strict=True):
            assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
            assert (a["verdict"], a["reason"]) == (b["verdict"], b["reason"])
            assert [s["label"] for s in a["set"]] == [s["label"] for s in b["set"]]
            for x, y in zip(a["top"], b["top"], strict=True):
                assert x["prob"] == pytest.approx(y["prob"], abs=1e-3)
        combined = client.post("/api/v1/predict", files=files[:2], data={"together": "true"}).json()
        assert combined["together"]["file"] == "2 photos together" and combined["entries"] == []
    recorded = station.log().entries()
    assert len(recorded) == len(photos) and {e.device for e in recorded} == {"Muara Angke"}
    assert {e.count for e in recorded} == {3}


def test_the_model_download_is_cached_by_its_etag_and_may_be_opened_to_anyone(station, tmp_path):
    import zipfile

    with _client(station) as client:
        info = client.get("/api/v1/model").json()
        assert info["checksum"] == CHECKSUM and info["classes"] and info["species"]["Trout"]["id"]
        r = client.get("/api/v1/model/download")
        assert r.status_code == 200 and r.headers["etag"] == f'"{info["package"]}"'
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            meta = json.loads(z.read("model.json"))
            parts = {p["sha256"] for p in meta["parts"]}
            assert set(z.namelist()) == {"model.onnx", "model.json"} | {f"parts/{p}" for p in parts} and len(parts) > 10
            for p in meta["parts"]:  # each part is named by its bytes' sha256
                assert hashlib.sha256(z.read(f"parts/{p['sha256']}")).hexdigest() == p["sha256"]
        assert meta["checksum"] == CHECKSUM and meta["outputs"] == ["probabilities", "distance", "fish_likeness"]
        again = client.get("/api/v1/model/download", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
        # An update leaves out the parts the device keeps: the same ETag, the same model.json and graph.
        have = sorted(parts)[: len(parts) // 2]
        update = client.post("/api/v1/model/update", json={"have": have})
        assert update.status_code == 200 and update.headers["etag"] == r.headers["etag"] and len(update.content) < len(r.content)
        with zipfile.ZipFile(io.BytesIO(update.content)) as z, zipfile.ZipFile(io.BytesIO(r.content)) as whole:
            assert {n for n in z.namelist() if n.startswith("parts/")} == {f"parts/{p}" for p in parts - set(have)}
            assert z.read("model.onnx") == whole.read("model.onnx") and z.read("model.json") == whole.read("model.json")
        same = client.post("/api/v1/model/update", json={"have": have}, headers={"If-None-Match": r.headers["etag"]})
        assert same.status_code == 304
        assert client.post("/api/v1/model/update", json={"have": ["../x"]}).status_code == 422
    with _client(station, False) as anyone:
        assert anyone.get("/api/v1/model/download").status_code == 401
    opened = InProcess(tmp_path / "open", None, open_model=True).start()
    try:
        with _client(opened, False) as anyone:
            assert anyone.get("/api/v1/model/download").status_code == 200
            assert anyone.post("/api/v1/sync", json={"entries": []}).status_code == 401
    finally:
        opened.stop()


def test_kill_9_in_the_middle_of_a_sync_then_the_device_sends_again_and_each_entry_is_whole_and_once(real_station):
    station = real_station
    photos = [_jpeg(100 + i) for i in range(40)]
    entries = [_entry(p, n) for n, p in enumerate(photos)]
    killer = threading.Timer(0.4, station.kill)
    killer.start()
    with contextlib.suppress(httpx.HTTPError, AssertionError), _client(station) as client:
        _sync(client, photos, entries, batch=2)
    killer.join()
    assert station.proc.poll() is not None  # it was killed during the sync
    station.start()
    with _client(station) as client:
        assert all(r.status_code == 200 for r in _sync(client, photos, entries, batch=7))
    log = station.log()
    got = log.entries()
    assert sorted(e.id for e in got) == sorted(e["id"] for e in entries)
    for e in got:
        data = log.photo_path(e.photo_sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e.photo_sha256 and e.word == "right" and len(log.history(e.id)) == 1


def test_postgresql_stopped_and_started_again_in_the_middle_of_a_sync(request, tmp_path):
    import psycopg

    pg = request.getfixturevalue("postgres_server")
    name = f"k{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=fishcore dbname=fishcore", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    server = Server(tmp_path, pg.url.rsplit("/", 1)[0] + f"/{name}")
    _, server.token = Devices(server.log()).add("Muara Angke")
    server.start()
    try:
        photos = [_jpeg(200 + i) for i in range(10)]
        entries = [_entry(p, n) for n, p in enumerate(photos)]
        with _client(server) as client:
            assert all(r.status_code == 200 for r in _sync(client, photos[:4], entries[:4]))
            pg.stop()
            away = client.post("/api/v1/sync", json={"entries": entries[4:]})
            assert away.status_code == 503 and away.json()["error"] == "catch_log_away" and away.headers["retry-after"]
            health = client.get("/api/v1/health").json()
            assert health["catch_log"] == "away" and health["status"] == "degraded"
            # Meanwhile a prediction recorded at the station waits in its spool (a token seen lately still counts).
            files = {"photos": ("p.jpg", photos[0], "image/jpeg")}
            spooled = client.post("/api/v1/predict", files=files, data={"record": "true"})
            assert spooled.status_code == 200 and len(spooled.json()["entries"]) == 1, spooled.text
            assert client.get("/api/v1/health").json()["waiting"] == 1
            pg.start()
            assert all(r.status_code == 200 for r in _sync(client, photos, entries))
            assert client.get("/api/v1/health").json()["waiting"] == 0  # health looked, and the spool was written
        got = server.log().entries()
        assert sorted(e.id for e in got if e.device == "Muara Angke" and e.id != spooled.json()["entries"][0]) == sorted(
            e["id"] for e in entries
        )
        assert server.log().get(spooled.json()["entries"][0]) is not None
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.start()
        server.stop()
        dispose_engines()
