"""The field server against retries, races and hostile devices, through a real server process and real HTTP clients,
on SQLite and PostgreSQL: copies of one sync arriving together, another device's entries, values at the edges,
photos that decode to huge images, oversized bodies without a length, guessed tokens, and schemathesis (the
OpenAPI fuzzer) with every check against the API's own description."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image
from test_server import Server, _client, _entry, _jpeg, _postgres_url, _sync, real_station, station  # noqa: F401 (fixtures)

from fishcore.store.catchlog import dispose_engines
from fishcore.store.catchlog.devices import Devices

from conftest import REPO, png_with_size

ROUNDS, AT_ONCE = 3, 4


def _at_once(n: int, work) -> list:
    """``work(k)`` for k in range(n), all started together."""
    start = threading.Barrier(n)

    def run(k):
        start.wait()
        return work(k)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_copies_of_one_sync_arriving_together_give_each_entry_and_word_once(real_station):  # noqa: F811
    photos = [_jpeg(100 + i) for i in range(6)]
    entries = []
    for n, p in enumerate(photos):
        e = _entry(p, n)
        e["words"].append({"word": "wrong", "species": "Sea Bass", "by": "Budi", "at": "2026-12-04T09:00:00+00:00"})
        entries.append(e)
    with _client(real_station) as client:
        for p in photos:  # the same new photo from four requests at once: stored once, no error
            puts = _at_once(AT_ONCE, lambda _k, p=p: client.put(f"/api/v1/photos/{_sha(p)}", content=p))
            assert sorted(r.status_code for r in puts) == [200] * (AT_ONCE - 1) + [201], [r.text for r in puts]
        for _ in range(ROUNDS):  # a phone that timed out and sent again, while the first copy is still being written
            answers = _at_once(AT_ONCE, lambda _k: client.post("/api/v1/sync", json={"entries": entries}))
            assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    log = real_station.log()
    got = {e.id: e for e in log.entries()}
    assert set(got) == {e["id"] for e in entries}
    for e in entries:
        assert len(log.history(e["id"])) == 2, log.history(e["id"])  # both words, once each
        assert (got[e["id"]].word, got[e["id"]].true_species) == ("wrong", "Sea Bass")


def test_one_new_photo_recorded_by_parallel_predictions_is_kept_once(real_station):  # noqa: F811
    photo = _jpeg(7)
    with _client(real_station) as client:
        answers = _at_once(AT_ONCE, lambda _k: client.post(
            "/api/v1/predict", files={"photos": ("p.jpg", photo, "image/jpeg")}, data={"record": "true"}))  # fmt: skip
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    log = real_station.log()
    assert len(log.entries()) == AT_ONCE and log.has_photos([_sha(photo)]) == {_sha(photo)}
    assert len(list((real_station.home / "catchlog" / "photos").rglob("*.jpg"))) == 1


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_device_cannot_change_another_devices_entries_nor_learn_which_exist(station):  # noqa: F811
    photo = _jpeg(3)
    mine = _entry(photo)
    with _client(station) as client:
        assert _sync(client, [photo], [mine])[0].status_code == 200
    _, other = Devices(station.log()).add("Cilincing")
    theirs = {**mine, "words": [{"word": "not_fish", "by": "x", "at": "2026-12-04T08:00:00+00:00"}], "count": 9}
    fresh = {**theirs, "id": str(uuid.uuid4())}
    with _client(station, other) as client:
        taken = client.post("/api/v1/sync", json={"entries": [theirs]})
        new = client.post("/api/v1/sync", json={"entries": [fresh]})
        assert taken.status_code == new.status_code == 200
        a, b = taken.json(), new.json()
        assert (a["added"], a["already"], a["words_added"]) == ([theirs["id"]], [], 1)  # as a new entry would be
        assert (b["added"], b["already"], b["words_added"]) == ([fresh["id"]], [], 1)
        assert [c["id"] for c in client.get("/api/v1/sync/changes").json()["changes"]] == [fresh["id"]]  # its own only
    log = station.log()
    entry = log.get(mine["id"])
    assert entry.device == "Muara Angke" and entry.word == "right" and entry.count == 2 and len(log.history(mine["id"])) == 1
    log.set_word(mine["id"], "not_fish", who="station")  # the station may still correct any entry
    assert log.get(mine["id"]).word == "not_fish"


EDGES = [
    ("taken_at", "0001-01-01T00:00:00+14:00", "taken_at"),
    ("taken_at", "9999-12-31T23:59:59-14:00", "taken_at"),
    ("taken_at", "2150-01-01T00:00:00+00:00", "taken_at"),
    ("taken_at", "1999-12-31T23:59:59+00:00", "taken_at"),
    ("word_at", "9999-12-31T23:59:59-23:59", "words[0].at"),
    ("confidence", float("nan"), "answer.confidence"),
    ("confidence", float("inf"), "answer.confidence"),
    ("distance", float("-inf"), "answer.distance"),
    ("distance", 1e308, "answer.distance"),
    ("top", [["Trout", 1.5]], "answer.top"),
    ("top", [["Trout", float("nan")]], "answer.top"),
    ("label", "Trout\x1b[31m", "answer.label"),
    ("label", "Tro\u202eut", "answer.label"),
    ("label", "../Trout", "answer.label"),
    ("top", [["Sea\u200bBass", 0.5]], "answer.top"),
    ("by", "Budi\u2066", "words[0].by"),
    ("place", "Muara\u200dAngke", "place"),
    ("species", "Kakap\u202a", "words[0].species"),
    ("model_name", "m\x00", "model_name"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def edge_station(request, tmp_path_factory):
    """One station for all the values at the edges (each is refused, so the log stays empty between them)."""
    server = Server(tmp_path_factory.mktemp("edges"), _postgres_url(request) if request.param == "postgresql" else None)
    _, server.token = Devices(server.log()).add("Muara Angke")
    server.start()
    yield server
    server.stop()
    dispose_engines()


@pytest.mark.parametrize("what, value, field", EDGES, ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(EDGES)])
def test_values_at_the_edges_are_refused_naming_the_field_and_nothing_is_written(edge_station, what, value, field):
    station = edge_station  # noqa: F811 (the module-wide station, under the usual name)
    photo = _jpeg(5)
    entry = _entry(photo)
    if what in ("confidence", "distance", "top", "label"):
        entry["answer"][what] = value
    elif what in ("by", "word_at", "species"):
        key = {"word_at": "at"}.get(what, what)
        entry["words"][0].update({key: value, **({"word": "wrong"} if what == "species" else {})})
    else:
        entry[what] = value
    body = json.dumps({"entries": [entry]})  # Python writes NaN and Infinity as JSON's loose readers take them
    with _client(station) as client:
        _sync(client, [photo], [])  # the photo first
        r = client.post("/api/v1/sync", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["field"].startswith(f"entries[0].{field}"), r.text
        since = client.get("/api/v1/sync/changes", params={"since": "0001-01-01T00:00:00+14:00"})
        assert since.status_code == 422 and since.json()["field"] == "since", since.text
    assert station.log().entries() == []


def test_the_log_prints_valid_json_after_hostile_devices(station, monkeypatch, capsys):  # noqa: F811
    """Whatever a device managed to send, `fishcore log list --json` prints one valid JSON object per line."""
    from fishcore.cli import main

    photo = _jpeg(9)
    names = ["Muara Angke \u0645\u0631\u062d\u0628\u0627", "Ikan \u00e9t\u00e9 \U0001f41f"]  # other scripts and emoji are fine
    with _client(station) as client:
        r = _sync(client, [photo], [_entry(photo, n, place=name) for n, name in enumerate(names)])
        assert r[0].status_code == 200, r[0].text
    for key, value in station.env.items():
        if key.startswith("FISHCORE_"):
            monkeypatch.setenv(key, value)
    assert main(["log", "list", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["place"] for r in rows) == sorted(names)
    dispose_engines()


def test_a_small_file_that_decodes_to_a_huge_image_neither_passes_nor_stalls_the_server(real_station):  # noqa: F811
    bomb = png_with_size(20_000, 20_000)  # 400 megapixels claimed by a 60-byte file: refused from its header
    large = png_with_size(8_000, 7_500)  # 60 megapixels: more than a phone camera's, over the server's limit
    buf = io.BytesIO()
    Image.new("RGB", (6_500, 6_500), (20, 90, 120)).save(buf, "PNG")  # 42 megapixels in about 130 kB: decoded
    big = buf.getvalue()
    assert len(big) < 500_000
    with _client(real_station) as client:
        r = client.put(f"/api/v1/photos/{_sha(bomb)}", content=bomb)
        assert r.status_code == 422 and "decompression bomb" in r.json()["reason"], r.text
        r = client.put(f"/api/v1/photos/{_sha(large)}", content=large)
        assert r.status_code == 422 and "over the limit of 50,000,000" in r.json()["reason"], r.text
        r = client.post("/api/v1/predict", files={"photos": ("b.png", bomb, "image/png")})
        assert r.status_code == 422 and r.json()["field"] == "photos[0]", r.text
        latencies, done = [], threading.Event()

        def upload() -> float:
            started = time.perf_counter()
            answer = client.put(f"/api/v1/photos/{_sha(big)}", content=big)
            assert answer.status_code in (200, 201), answer.text
            return time.perf_counter() - started

        def health() -> None:
            with httpx.Client(base_url=real_station.url, timeout=30) as other:
                while not done.is_set():
                    started = time.perf_counter()
                    assert other.get("/api/v1/health").status_code == 200
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.02)

        watcher = threading.Thread(target=health)
        watcher.start()
        try:
            seconds = _at_once(3, lambda _k: upload())
        finally:
            done.set()
            watcher.join()
    latencies.sort()
    print(f"3 uploads of a 42-megapixel PNG: {max(seconds):.2f} s; health during them: median "
          f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms over {len(latencies)}")  # fmt: skip
    assert len(latencies) >= 5  # health answered all along, and never waited for a decode to finish
    assert latencies[len(latencies) // 2] < 0.1 and latencies[-1] < max(seconds) / 2


def test_an_oversized_body_is_413_with_or_without_a_length(tmp_path):
    server = Server(tmp_path, None, "--max-body-mb", "1")
    _, server.token = Devices(server.log()).add("Muara Angke")
    server.start()
    try:
        body = b"{" + b" " * (3 * 2**20) + b"}"

        def chunks():
            for i in range(0, len(body), 65_536):
                yield body[i : i + 65_536]

        with _client(server) as client:
            with_length = client.post("/api/v1/sync", content=body, headers={"Content-Type": "application/json"})
            without = client.post("/api/v1/sync", content=chunks(), headers={"Content-Type": "application/json"})
            photo = client.put(f"/api/v1/photos/{'a' * 64}", content=chunks())
            small = client.post("/api/v1/sync", content=iter([b'{"entries": []}']), headers={"Content-Type": "application/json"})
        assert with_length.status_code == without.status_code == photo.status_code == 413, (without.text, photo.text)
        assert without.json()["error"] == "too_large" and small.status_code == 200, small.text
    finally:
        server.stop()
        dispose_engines()


def test_guessed_tokens_are_limited_per_client_address(real_station):  # noqa: F811
    from fishcore.server.config import ServerConfig

    burst = ServerConfig().failures_burst
    guesser = {"X-Forwarded-For": "203.0.113.7"}  # the peer is loopback, a trusted proxy: its forwarded address counts
    with _client(real_station, "guess") as client:
        codes = [client.get("/api/v1/model", headers=guesser).status_code for _ in range(burst + 2)]
    assert codes[:burst] == [401] * burst and codes[-1] == 429, codes
    with _client(real_station) as client:
        assert client.get("/api/v1/model", headers=guesser).status_code == 429  # even with a good token, for now
        assert client.get("/api/v1/model", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200
        assert client.get("/api/v1/model").status_code == 200


@pytest.mark.slow
def test_schemathesis_finds_nothing_with_every_check(tmp_path):
    """The OpenAPI fuzzer, every check, against a real server with a valid token (schemathesis.toml says the one
    thing a schema cannot: which refusals with 422 are rules beyond it)."""
    server = Server(tmp_path, None)
    server.env.update({"FISHCORE_SERVER_BURST": "100000", "FISHCORE_SERVER_PER_MINUTE": "1000000"})
    _, token = Devices(server.log()).add("fuzzer")
    server.start()
    try:
        st = shutil.which("st", path=str(REPO / ".venv" / "bin")) or shutil.which("st")
        proc = subprocess.run([st, "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {token}",
                               "--checks", "all", "--max-examples", "40", "--seed", "7", "--no-color"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        import httpx

        operations = sum(len(methods) for methods in httpx.get(f"{server.url}/openapi.json").json()["paths"].values())
        assert f"{operations}/{operations}" in proc.stdout and " passed" in proc.stdout  # every operation was exercised
    finally:
        server.stop()
        dispose_engines()
