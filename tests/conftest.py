"""Shared fixtures: tiny synthetic image folders, the real photo folders, and RNG hygiene."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("FISHCORE_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("FISHCORE_HOME", str(Path(__file__).resolve().parent.parent))
# Feature and scan caches of the tests (and of the CLI processes they start) stay out of the repository: one cache
# for the run, shared by every xdist worker as the app, the CLI and the field server share theirs (its files are
# written whole and renamed into place, so processes may fill it at once). The managed dataset area and the catch log
# folder start empty for each test process (every worker has its own). A folder the user named is used as it is.
_MADE = "_FISHCORE_TEST_MADE_DIRS"  # the per-process variables a test process (the parent of the workers) set itself
_made = set(os.environ.get(_MADE, "").split())
os.environ.setdefault("FISHCORE_CACHE_DIR", tempfile.mkdtemp(prefix="fishcore-test-cache-"))
for _name, _prefix in (("FISHCORE_DATASETS_DIR", "datasets"), ("FISHCORE_CATCHLOG_DIR", "catchlog")):
    if _name not in os.environ or _name in _made:
        os.environ[_name] = tempfile.mkdtemp(prefix=f"fishcore-test-{_prefix}-")
        _made.add(_name)
os.environ[_MADE] = " ".join(sorted(_made))
os.environ.pop("FISHCORE_DB_URL", None)  # the tests choose their databases themselves

# The suite runs on every core with pytest-xdist (pyproject's `-n auto`, one file per worker). Each worker then
# computes on its share of the cores, and so do the processes it starts (servers, the CLI, the app): N workers each
# spinning all of the cores' threads would slow every one of them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = max(1, (os.cpu_count() or 1) // _WORKERS)
    torch.set_num_threads(_threads)
    os.environ["OMP_NUM_THREADS"] = str(_threads)


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most four (every worker holds torch, and its tests start servers and
    Chromium)."""
    return max(1, min(4, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
LSFD = SHARED_DATA / "lsfd"
F4K = SHARED_DATA / "f4k"
NONFISH = SHARED_DATA / "nonfish"


@pytest.fixture(autouse=True)
def _restore_rng():
    """Tests may seed freely; the global RNG state is put back afterwards."""
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    yield
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def class_image(label_index: int, seed: int, size: int = 48) -> Image.Image:
    """A synthetic photo whose class is visible: a class-coloured disc at a random place on noise."""
    rng = np.random.default_rng(seed)
    # A random low-frequency background makes every image's perceptual hash distinct.
    coarse = Image.fromarray(rng.integers(0, 120, (4, 4, 3), dtype=np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(coarse).copy()
    colour = np.array([(255, 40, 40), (40, 255, 40), (40, 40, 255), (255, 255, 40)][label_index % 4], dtype=np.uint8)
    cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
    yy, xx = np.mgrid[:size, :size]
    arr[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 5) ** 2] = colour
    return Image.fromarray(arr)


def make_image_folder(root: Path, classes: list[str], per_class: int, size: int = 48, ext: str = ".png") -> Path:
    """A dataset folder with one sub-folder of distinct synthetic images per class."""
    for ci, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            class_image(ci, seed=1000 * ci + i, size=size).save(root / label / f"img_{i:03d}{ext}")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "data", ["red", "green", "blue"], per_class=12)


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (for decompression-bomb checks) with a 1-pixel body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b"")


def require_shared(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real photos not found at {path} (see ../shared/data/README.md)")
    return path


def lsfd_subset(dest: Path, species=("Trout", "Shrimp", "Sea Bass"), per_class: int = 12) -> Path:
    """A small real dataset: the first photos of a few LSFD species, copied into a temporary folder."""
    root = require_shared(LSFD)
    for label in species:
        (dest / label).mkdir(parents=True)
        for f in sorted((root / label).iterdir())[:per_class]:
            shutil.copyfile(f, dest / label / f.name)
    return dest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can react to a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# CI sets this: there a missing Chromium is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("FISHCORE_REQUIRE_BROWSER", "") not in ("", "0")
_BROWSER_SKIP = "Chromium not found"


# The test files that take longest, longest first (one-process seconds on a 2-core AMD EPYC, 2026-12-08; docs/testing.md).
# With two workers each taking a whole file, a long file started last leaves one core idle while the other finishes
# it: xdist hands files out in the order collected (pyproject: --no-loadscope-reorder), so these go first.
LONGEST_FILES = ("test_browser.py", "test_bench.py", "test_fieldapp.py", "test_hostile.py", "test_probe.py",
                 "test_real_photos.py", "test_fresh_clone.py", "test_server.py", "test_cli.py", "test_app.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first (the rest in their usual order); without Chromium, the browser tests are skipped (one
    line says so at the end), unless CI requires them."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
    if Path(CHROMIUM).exists() or REQUIRE_BROWSER:
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"{_BROWSER_SKIP} at {CHROMIUM}"))


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if _BROWSER_SKIP in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser test(s) skipped: Chromium is not installed. Install it with "
            "`sudo apt-get install chromium` (Debian/Ubuntu) and run again; CI always runs them.",
            yellow=True,
        )


@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright, driving Debian's Chromium (no browser download); one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


# --- a real PostgreSQL server for the database tests ---------------------------------------------

# CI sets this: there a missing PostgreSQL server is a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("FISHCORE_REQUIRE_POSTGRES", "") not in ("", "0")


def _postgres_bin() -> Path | None:
    """Debian's PostgreSQL server programs (the newest version installed), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1, its data in a temporary folder; stop() and start() for fault tests."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin, self.root, self.port = bin_dir, root, _free_port()
        self.data = root / "data"
        self.url = f"postgresql+psycopg://fishcore@127.0.0.1:{self.port}/fishcore"

    def _run(self, *cmd: str) -> None:
        # The server refuses to run as root: as root, run it as Debian's postgres user.
        # runuser lives in sbin, which a plain user's PATH (or a clean shell's) may not hold.
        sbin = [p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()]
        runuser = shutil.which("runuser") or (sbin[0] if sbin else "runuser")
        prefix = [runuser, "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "fishcore", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "fishcore", "fishcore")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test run; skipped with a one-line reason where none is installed."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql); the PostgreSQL half is skipped"
        if REQUIRE_POSTGRES:
            pytest.fail(message.replace("is skipped", "is required (FISHCORE_REQUIRE_POSTGRES=1)"))
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="fishcore-pg-"))  # under /tmp, which the postgres user can reach
    server = PostgresServer(bin_dir, root)
    server.init()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped by a test
        server.stop()
    shutil.rmtree(root, ignore_errors=True)
