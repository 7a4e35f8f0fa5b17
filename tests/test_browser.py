"""The whole app in a real headless Chromium: every page, an upload and a fake-camera photo on Predict."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishcore.store.model_files import bundled_model_dir, read_card

from conftest import CHROMIUM, LSFD, REPO, lsfd_subset, require_shared

SHOTS = REPO / "artifacts" / "screenshots"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_y4m(image: Image.Image, path: Path, frames: int = 10) -> None:
    """A YUV4MPEG2 (4:2:0) video of one still photo, which Chromium can play as a fake camera."""
    img = image.convert("RGB").resize((640, 480))
    ycbcr = np.asarray(img.convert("YCbCr"))
    y = ycbcr[..., 0]
    cb = ycbcr[::2, ::2, 1]
    cr = ycbcr[::2, ::2, 2]
    frame = b"FRAME\n" + y.tobytes() + cb.tobytes() + cr.tobytes()
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(frame)


@pytest.fixture(scope="module")
def photos():
    """Two LSFD test-split photos of different species that the bundled model never trained on."""
    root = require_shared(LSFD)
    card = read_card(bundled_model_dir())
    test = card.split["test"]
    first = test[0]
    second = next(p for p in test if p.split("/")[0] != first.split("/")[0])
    return [(root / p, p.split("/")[0]) for p in (first, second)]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run installs Debian's chromium package")
    work = tmp_path_factory.mktemp("app")
    port = _free_port()
    env = {
        **os.environ,
        "FISHCORE_MODELS_DIR": str(work / "models"),
        "FISHCORE_RUNS_DIR": str(work / "runs"),
        "FISHCORE_CACHE_DIR": str(work / "cache"),
        "FISHCORE_DATA": str(LSFD),
    }
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = open(work / "streamlit.log", "wb")  # noqa: SIM115 (closed after the server stops)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (work / "streamlit.log").read_text()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser(photos, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    video = tmp_path_factory.mktemp("camera") / "fish.y4m"
    write_y4m(Image.open(photos[1][0]), video)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def warm_app(browser, app_url):
    """Open the home page once. Until a session has run app.py, Streamlit serves a deep link to a fresh
    server through its legacy pages/ discovery, which shows a "Page not found" dialog first."""
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(app_url)
    pg.get_by_role("heading", name="Marine fish species classifier").wait_for(timeout=120_000)
    context.close()
    return app_url


@pytest.fixture
def page(browser, warm_app, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:  # what the page looked like when the test failed
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


def shoot(page, name: str) -> None:
    page.wait_for_timeout(1500)  # let charts and images settle
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _open(page, app_url, path: str, heading: str, ready: str | None = None) -> None:
    page.goto(f"{app_url}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    if ready:
        page.get_by_text(ready).first.wait_for(timeout=120_000)


@pytest.mark.parametrize(
    "path, heading, ready",
    [
        ("", "Marine fish species classifier", "Active model"),
        ("data", "Data", "Usable photos"),
        ("augment", "Augmentation lab", "view 8"),
        ("evaluate", "Evaluate", "Per species"),
        ("models", "Models", "lsfd_mobilenet_v2"),
    ],
)
def test_every_page_renders_without_an_error(page, app_url, path, heading, ready):
    _open(page, app_url, path, heading, ready)
    shoot(page, path or "home")
    assert page.locator("[data-testid='stException']").count() == 0


def test_training_runs_in_the_background_and_survives_a_refresh(page, app_url, tmp_path):
    subset = lsfd_subset(tmp_path / "subset", per_class=16)
    _open(page, app_url, "train", "Train", "New training run")
    box = page.get_by_role("textbox", name="Dataset folder")
    box.fill(str(subset))
    box.press("Enter")
    page.get_by_text("Advanced settings").click()
    for label, value in (("Epochs", "40"), ("Batch size", "4"), ("Image size", "96"), ("Validate every N iterations", "3")):
        field = page.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
    page.get_by_text("Fast (cached features").click()  # instant mode would finish before the refresh
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Start training").click()
    progress = page.get_by_text("training:").first
    progress.wait_for(timeout=120_000)
    page.get_by_text("validation", exact=True).first.wait_for(timeout=120_000)  # the curves' legend: validation has run
    heading = page.get_by_role("heading", name="Run ").first.inner_text()
    shoot(page, "train")
    page.reload()  # a refresh neither stops nor duplicates the job
    page.get_by_role("heading", name="Run ").first.wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="Run ").first.inner_text().split(":")[0] == heading.split(":")[0]
    page.get_by_role("button", name="Stop and keep the best model so far").click(timeout=60_000)
    page.get_by_text("stopped by request").first.wait_for(timeout=120_000)
    assert page.locator("[data-testid='stException']").count() == 0


def test_predict_names_an_uploaded_photo_and_a_camera_photo(page, app_url, photos):
    _open(page, app_url, "predict", "What fish is this?", "Take a photo")
    # Camera (the first tab): Chromium's fake camera plays a video made from a real photo.
    camera_species = photos[1][1]
    answer = page.locator("[data-testid='stAlertContentSuccess']", has_text=camera_species).first
    # The shutter only captures once the fake camera's video is playing.
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000
    )
    for _ in range(3):
        page.get_by_role("button", name="Take Photo").click(timeout=60_000)
        try:
            answer.wait_for(timeout=30_000)
            break
        except Exception:  # a capture that produced no frame: press the shutter again
            continue
    answer.wait_for(timeout=1_000)
    # Upload.
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type='file']").set_input_files(str(photos[0][0]))
    page.locator("[data-testid='stAlertContentSuccess']", has_text=photos[0][1]).first.wait_for(timeout=60_000)
    shoot(page, "predict")
    assert page.locator("[data-testid='stException']").count() == 0
