"""`./run.sh bench --field-app [ROOT]`: the field app's model on the phone beside the station, in one run.

A real field server and the field app in headless Chromium (onnxruntime-web, WebAssembly, one thread: no
cross-origin isolation) at 390 px: the download (8-bit weights, models/quantize.py) beside what the float32
graph would weigh, what an update after teaching downloads (only the parts that changed), how long the app
takes from opening offline to its first answer, the time per photo in the browser beside the station's
onnxruntime (Python, one thread) on the same graph and photos, small photos and a phone camera's, where the
graph spends its time, and whether the phone and the station (`Predictor`, the product's own path) give the
same species and verdict over more than 1,000 photos of ROOT (lsfd/, f4k/, egu/, nonfish/) and photos of a
phone's size. Nothing here asserts a time.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import measured_on, phone_photo, station_process

PHOTOS_TIMED = 30
AGREEMENT_PHOTOS = 1000
PHONE_SIZE = 20  # camera-size JPEGs (3000-4000 px, EXIF orientation) made from the sample photos
TEACH_MODES = ("instant", "fast")  # the new versions whose update is measured


def _photos(root: Path, n: int) -> list[Path]:
    """n photos spread over the sets and their species folders, in a fixed order."""
    groups = []
    for name in ("lsfd", "f4k", "egu", "nonfish"):
        base = root / name
        if base.is_dir():
            folders = sorted(p for p in base.iterdir() if p.is_dir()) or [base]
            for f in folders:
                groups.append(sorted(p for p in f.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")))
    out, k = [], 0
    while len(out) < n and any(k < len(g) for g in groups):
        out += [g[k] for g in groups if k < len(g)]
        k += 1
    return out[:n]


def _station_session(graph: bytes):
    """The graph in onnxruntime (Python), one thread as the phone's WebAssembly runs here, the 8-bit weights folded
    into float constants at load as the phone does."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _station_times(graph: bytes, meta: dict, photos: list[Path | bytes]) -> list[float]:
    """Seconds per photo at the station, one thread: read it as the station does (Predictor.read), prepare, run."""
    from fishcore.data.augment import build_transforms
    from fishcore.data.images import load_image

    size = meta["input"]["image_size"]
    transform = build_transforms(None, train=False, image_size=size, mean=tuple(meta["input"]["mean"]),
                                 std=tuple(meta["input"]["std"]))  # fmt: skip
    session, seconds = _station_session(graph), []
    for p in photos:
        start = time.perf_counter()
        x = transform(load_image(io.BytesIO(p) if isinstance(p, bytes) else p)).unsqueeze(0).numpy()
        session.run(None, {"image": x})
        seconds.append(time.perf_counter() - start)
    return seconds


def _profile(graph: bytes, size: int) -> list[tuple[str, float]]:
    """The share of the graph's time per operator type (onnxruntime's profiler, one thread, 20 runs)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "p")
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        x = np.zeros((1, 3, size, size), np.float32)
        for _ in range(20):
            session.run(None, {"image": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(by_op.values()) or 1
    return [(op, t / total) for op, t in by_op.most_common(5)]


TAUGHT = {"instant": "on frozen features (instant)", "fast": "with fine-tuning (fast mode, 2 epochs)"}


def _teach(data: Path, out: Path, mode: str, env: dict) -> Path:
    """A new version trained by the command line (its photos: data), as teaching makes one."""
    cmd = [sys.executable, "-m", "fishcore", "train", str(data), "--out", str(out), "--mode", mode, "--quiet"]
    if mode != "instant":
        cmd += ["--epochs", "2"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=1800)
    return out


def _lesson(root: Path, work: Path) -> Path:
    """A teaching set: the nine LSFD species (12 photos each) and one reef species the bundled model does not know."""
    out = work / "lesson"
    for species in sorted(p for p in (root / "lsfd").iterdir() if p.is_dir()):
        (out / species.name).mkdir(parents=True)
        for photo in sorted(species.iterdir())[:12]:
            (out / species.name / photo.name).symlink_to(photo.resolve())
    new = sorted(p for p in (root / "f4k").iterdir() if p.is_dir())[0]
    (out / new.name).mkdir()
    for photo in sorted(new.iterdir())[:30]:
        (out / new.name / photo.name).symlink_to(photo.resolve())
    return out


def _phone_answers(page, items: list[tuple[str, bytes, str]]) -> list[tuple[float, str, str, str]]:
    """(ms, species, verdict, reason) of each photo answered by the field app's model in the page."""
    out = []
    for _name, data, kind in items:
        out.append(tuple(page.evaluate(
            "async ([b64, type]) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));"
            " const blob = new Blob([bytes], {type}); const t0 = performance.now();"
            " const a = await window.fieldApp.model.answer(blob);"
            " return [performance.now() - t0, a.top[0].label, a.verdict, a.reason]; }",
            [base64.b64encode(data).decode(), kind],
        )))  # fmt: skip
    return out


def run_fieldapp(root: str = "../shared/data", log=lambda _m: None) -> str:
    from playwright.sync_api import sync_playwright

    from fishcore.inference.package import VerdictNet, build_package
    from fishcore.inference.predict import Predictor
    from fishcore.models.onnx_export import to_onnx
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.catchlog.devices import Devices
    from fishcore.store.model_files import bundled_model_dir

    shared = Path(root)
    repo = Path(__file__).resolve().parent.parent
    package = build_package(bundled_model_dir())
    meta, graph = package.meta, package.onnx()
    predictor = Predictor.load(bundled_model_dir())
    float_graph = to_onnx(VerdictNet(predictor).eval(), meta["input"]["image_size"], names=("image", "p", "d", "f"))
    float_zip = len(zlib.compress(float_graph, 6))
    work = Path(tempfile.mkdtemp(prefix="fishcore-bench-fieldapp-"))
    env = {**os.environ}
    for sub in ("models", "runs", "cache", "datasets", "catchlog"):
        env[f"FISHCORE_{sub.upper()}_DIR"] = str(work / sub)
    env.pop("FISHCORE_DB_URL", None)
    # --- updates: two new versions taught on the same photos, one on frozen features, one fine-tuned ---
    log("teaching two versions...")
    lesson = _lesson(shared, work)
    have = set(package.parts or {})
    updates = {}
    for mode in TEACH_MODES:
        start = time.perf_counter()
        folder = _teach(lesson, work / f"taught-{mode}", mode, env)
        taught = build_package(folder)
        updates[mode] = (len(taught.without(have)), len(taught.data), time.perf_counter() - start)
    # --- photos: small ones from every set, and a phone camera's ---
    small = _photos(shared, AGREEMENT_PHOTOS)
    samples = sorted((repo / "assets" / "samples").glob("*/*/*.png"))
    big = [phone_photo(samples[i * len(samples) // PHONE_SIZE], 3000 + 50 * i, (6, 8, 3, 1)[i % 4]) for i in range(PHONE_SIZE)]
    items = [(p.name, p.read_bytes(), "image/png" if p.suffix.lower() == ".png" else "image/jpeg") for p in small]
    items += [(f"phone-{i}.jpg", b, "image/jpeg") for i, b in enumerate(big)]
    log(f"the station's answers on {len(items)} photos...")
    station = [
        (p.label, p.verdict, p.reason)
        for i in range(0, len(items), 32)
        for p in predictor.predict([io.BytesIO(b) for _, b, _ in items[i : i + 32]])
    ]
    station_small = _station_times(graph, meta, small[:PHOTOS_TIMED])
    station_big = _station_times(graph, meta, big[:5])
    profile = _profile(graph, meta["input"]["image_size"])
    # --- the phone: the field app in Chromium, served by a real field server ---
    _, token = Devices(CatchLog(None, work / "catchlog")).add("bench phone")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with station_process(env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])  # fmt: skip
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        ready = "document.body.dataset.ready === 'true' && !document.getElementById('take').disabled"
        start = time.perf_counter()
        page.goto(f"{url}/#token={token}")
        page.wait_for_function(ready, timeout=300_000)
        first_visit = time.perf_counter() - start
        page.evaluate("navigator.serviceWorker.ready")
        page.wait_for_timeout(1500)
        context.set_offline(True)
        first_answer = []
        for _ in range(3):  # opening offline, then one photo: the first answer
            start = time.perf_counter()
            page.reload()
            page.wait_for_function(ready, timeout=300_000)
            page.set_input_files("#take", str(small[0]))
            page.wait_for_function("document.querySelector('#answer article') !== null", timeout=120_000)
            first_answer.append(time.perf_counter() - start)
            page.evaluate("async () => { const s = await import('./store.js');"
                          " for (const e of await s.entries()) await s.remove('entries', e.id); }")  # fmt: skip
        log(f"the phone's answers on {len(items)} photos...")
        phone = _phone_answers(page, items)
        split = page.evaluate(
            "async ([b64]) => { const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]);"
            " const m = window.fieldApp.model; const ort = await import('./vendor/ort.wasm.min.mjs');"
            " const size = m.meta.input.image_size;"
            " let t = performance.now(); for (let i = 0; i < 10; i++) await m.prepare(blob);"
            " const prepare = (performance.now() - t) / 10;"
            " const x = await m.prepare(blob); t = performance.now();"
            " for (let i = 0; i < 10; i++) await m.session.run({image: new ort.Tensor('float32', x, [1, 3, size, size])});"
            " return [prepare, (performance.now() - t) / 10]; }",
            [base64.b64encode(small[0].read_bytes()).decode()],
        )  # fmt: skip
        browser.close()
    shutil.rmtree(work, ignore_errors=True)
    differ = [(items[i][0], s, f[1:]) for i, (s, f) in enumerate(zip(station, phone, strict=True)) if s[:2] != f[1:3]]
    n_small = len(small)
    phone_small = statistics.median(f[0] for f in phone[:PHOTOS_TIMED]) / 1000
    phone_big = statistics.median(f[0] for f in phone[n_small:]) / 1000
    mb = 2**20
    what = ("; `./run.sh bench --field-app`: the field app in headless Chromium (onnxruntime-web 1.31.1, WebAssembly, "
            "one thread) beside the station (onnxruntime in Python, one thread; answers by fishcore's Predictor)")  # fmt: skip
    lines = [
        measured_on(what),
        "",
        "| | value |",
        "|---|---|",
        f"| first download (zip: model.json, graph, {len(package.parts or {})} parts; 8-bit weights) | "
        f"{len(package.data) / mb:.2f} MB |",
        f"| the same graph with float32 weights, deflated | {float_zip / mb:.2f} MB |",
        *(f"| update after teaching {TAUGHT[mode]} (taught in {seconds:.0f} s) | {sent / mb:.2f} MB of {whole / mb:.2f} MB |"
          for mode, (sent, whole, seconds) in updates.items()),
        f"| first visit until the app can answer (shell, runtime, model over localhost) | {first_visit:.1f} s |",
        f"| opening the app offline until its first answer (median of 3) | {statistics.median(first_answer):.1f} s |",
        f"| per photo on the phone, small photos (decode, resize, network, verdict; median of {PHOTOS_TIMED}) | "
        f"{1000 * phone_small:.0f} ms |",
        f"| per photo at the station, one thread (the same steps) | {1000 * statistics.median(station_small):.0f} ms |",
        f"| phone / station, small photos | {phone_small / statistics.median(station_small):.2f}x |",
        f"| per photo on the phone, camera JPEGs of 3000-4000 px (median of {PHONE_SIZE}) | {1000 * phone_big:.0f} ms |",
        f"| per photo at the station, the same JPEGs (median of 5) | {1000 * statistics.median(station_big):.0f} ms |",
        f"| of the phone's time per small photo: preparing the photo, the network | {split[0]:.0f} ms, {split[1]:.0f} ms |",
        "| the graph's time by operator (onnxruntime's profiler, one thread) | "
        + ", ".join(f"{op} {share:.0%}" for op, share in profile) + " |",
        f"| phone and station give the same species and verdict | {len(items) - len(differ)} of {len(items)} photos "
        f"({n_small} from the sets, {PHONE_SIZE} of a phone's size) |",
    ]
    if differ:
        lines += ["", "Where they differ (photo: station, phone):", ""]
        lines += [f"- {name}: {s} / {tuple(f)}" for name, s, f in differ]
    return "\n".join(lines)
