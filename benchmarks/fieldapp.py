"""`./run.sh bench --field-app [ROOT]`: the field app's model on the phone beside the station, in one run.

A real field server and the field app in headless Chromium (onnxruntime-web, WebAssembly, one thread: no
cross-origin isolation) at 390 px: the download's size, how long the app takes from opening offline (its
second visit: the service worker and IndexedDB hold everything) to its first answer, and the time per photo
in the browser beside the station's onnxruntime (Python) on the same graph and photos. Then whether an int8
version of the graph (onnxruntime's dynamic quantisation) would do: its size and how often it gives the float
graph's species and verdict on the photos of ROOT (lsfd/, f4k/, egu/, nonfish/). Nothing here asserts a time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.common import measured_on, station_process

PHOTOS_TIMED = 30
AGREEMENT_PHOTOS = 400


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


def _judge(probs, distance, fish, meta) -> tuple[str, str]:
    from fishcore.inference.openset import OpenSet, judge

    openset = None
    if meta["distance_threshold"] is not None:
        openset = OpenSet(np.zeros((1, 1)), meta["distance_threshold"], meta["fish_threshold"])
    return judge(float(probs.max()), float(distance), float(fish), meta["threshold"], openset)


def _station_answers(graph: bytes, meta: dict, photos: list[Path]) -> tuple[list, list[float]]:
    """The graph in onnxruntime (Python), photos prepared by fishcore's own preprocessing; answers and seconds."""
    import onnxruntime as ort

    from fishcore.data.augment import build_transforms
    from fishcore.data.images import load_image

    size = meta["input"]["image_size"]
    mean, std = tuple(meta["input"]["mean"]), tuple(meta["input"]["std"])
    transform = build_transforms(None, train=False, image_size=size, mean=mean, std=std)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the phone's WebAssembly runs here: one thread
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    answers, seconds = [], []
    for p in photos:
        start = time.perf_counter()
        x = transform(load_image(p, min_size=size)).unsqueeze(0).numpy()
        probs, distance, fish = session.run(None, {"image": x})
        seconds.append(time.perf_counter() - start)
        answers.append((int(probs[0].argmax()), *_judge(probs[0], distance[0], fish[0], meta)))
    return answers, seconds


CALIBRATION = 32


def _static_int8(graph: bytes, model_dir: Path) -> bytes:
    """onnxruntime's static quantisation (QDQ, per-channel weights) calibrated on some of the model's training photos."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fishcore.data.augment import build_transforms
    from fishcore.data.images import load_image
    from fishcore.store.model_files import read_card

    card = read_card(model_dir)
    photos = [card.data_root / p for p in card.split["train"][:: max(1, len(card.split["train"]) // CALIBRATION)]][:CALIBRATION]
    transform = build_transforms(None, train=False, image_size=card.image_size, mean=tuple(card.mean), std=tuple(card.std))

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(photos)

        def get_next(self):
            p = next(self.left, None)
            return None if p is None else {"image": transform(load_image(p, min_size=card.image_size)).unsqueeze(0).numpy()}

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.onnx").write_bytes(graph)
        quant_pre_process(str(Path(tmp) / "f.onnx"), str(Path(tmp) / "p.onnx"))
        quantize_static(str(Path(tmp) / "p.onnx"), str(Path(tmp) / "q.onnx"), Photos(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
        return (Path(tmp) / "q.onnx").read_bytes()


def run_fieldapp(root: str = "../shared/data", log=lambda _m: None) -> str:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from playwright.sync_api import sync_playwright

    from fishcore.inference.package import build_package
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.catchlog.devices import Devices
    from fishcore.store.model_files import bundled_model_dir

    shared = Path(root)
    photos = _photos(shared, PHOTOS_TIMED)
    package = build_package(bundled_model_dir())
    with zipfile.ZipFile(io.BytesIO(package.data)) as z:
        graph = z.read("model.onnx")
        meta = json.loads(z.read("model.json"))
    # --- the station: onnxruntime in Python, one thread ---
    station, station_s = _station_answers(graph, meta, photos)
    # --- the phone: the field app in Chromium, served by a real field server ---
    work = Path(tempfile.mkdtemp(prefix="fishcore-bench-fieldapp-"))
    env = {**os.environ}
    for sub in ("models", "runs", "cache", "datasets", "catchlog"):
        env[f"FISHCORE_{sub.upper()}_DIR"] = str(work / sub)
    env.pop("FISHCORE_DB_URL", None)
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
            page.set_input_files("#take", str(photos[0]))
            page.wait_for_function("document.querySelector('#answer article') !== null", timeout=120_000)
            first_answer.append(time.perf_counter() - start)
            page.evaluate("async () => { const s = await import('./store.js');"
                          " for (const e of await s.entries()) await s.remove('entries', e.id); }")  # fmt: skip
        phone_s, phone = [], []
        for photo in photos:
            data = photo.read_bytes()
            kind = "image/png" if photo.suffix.lower() == ".png" else "image/jpeg"
            result = page.evaluate(
                "async ([bytes, type]) => { const blob = new Blob([new Uint8Array(bytes)], {type});"
                " const t0 = performance.now(); const a = await window.fieldApp.model.answer(blob);"
                " return [performance.now() - t0, a.top[0].label, a.verdict, a.reason]; }",
                [list(data), kind],
            )
            phone_s.append(result[0] / 1000)
            phone.append(tuple(result[1:]))
        split = page.evaluate(
            "async ([bytes]) => { const blob = new Blob([new Uint8Array(bytes)]); const m = window.fieldApp.model;"
            " const ort = await import('./vendor/ort.wasm.min.mjs'); const size = m.meta.input.image_size;"
            " let t = performance.now(); for (let i = 0; i < 10; i++) await m.prepare(blob);"
            " const prepare = (performance.now() - t) / 10;"
            " const x = await m.prepare(blob); t = performance.now();"
            " for (let i = 0; i < 10; i++) await m.session.run({image: new ort.Tensor('float32', x, [1, 3, size, size])});"
            " return [prepare, (performance.now() - t) / 10]; }",
            [list(photos[0].read_bytes())],
        )  # fmt: skip
        browser.close()
    agree_phone = sum(meta["classes"][s[0]] == f[0] and s[1] == f[1] for s, f in zip(station, phone, strict=True))
    # --- int8: onnxruntime's dynamic quantisation of the same graph ---
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.onnx").write_bytes(graph)
        quantize_dynamic(str(Path(tmp) / "f.onnx"), str(Path(tmp) / "q.onnx"), weight_type=QuantType.QUInt8)
        int8 = (Path(tmp) / "q.onnx").read_bytes()
    many = _photos(shared, AGREEMENT_PHOTOS)
    log(f"int8 agreement on {len(many)} photos...")
    floats, _ = _station_answers(graph, meta, many)
    static = _static_int8(graph, bundled_model_dir())
    static_answers, _ = _station_answers(static, meta, many)
    static_agree = sum(a[:2] == b[:2] for a, b in zip(floats, static_answers, strict=True)) / len(many)
    try:
        ints, int8_s = _station_answers(int8, meta, many)
        agree = sum(a[:2] == b[:2] for a, b in zip(floats, ints, strict=True)) / len(many)
        int8_words = f"{len(int8) / 2**20:.1f} MB; the float graph's species and verdict on {agree:.1%} of {len(many)} photos"
        int8_words += f" ({1000 * statistics.median(int8_s):.0f} ms per photo)"
    except Exception as exc:  # an operator onnxruntime cannot run quantised
        agree, int8_words = 0.0, f"{len(int8) / 2**20:.1f} MB; does not run: {str(exc)[:120]}"
    ships = "int8" if agree >= 0.99 and len(int8) <= 5.5 * 2**20 else "float32"
    med_phone, med_station = statistics.median(phone_s), statistics.median(station_s)
    what = ("; `./run.sh bench --field-app`: the field app in headless Chromium (onnxruntime-web 1.31.1, WebAssembly, "
            "one thread) beside the station's onnxruntime (Python, one thread), same graph and photos")  # fmt: skip
    lines = [
        measured_on(what),
        "",
        "| | value |",
        "|---|---|",
        f"| model download (zip: model.onnx float32 and model.json) | {len(package.data) / 2**20:.1f} MB |",
        f"| first visit until the app can answer (shell, runtime, model over localhost) | {first_visit:.1f} s |",
        f"| opening the app offline until its first answer (median of 3) | {statistics.median(first_answer):.1f} s |",
        f"| per photo on the phone (decode, resize, network, verdict; median of {len(photos)}) | {1000 * med_phone:.0f} ms |",
        f"| per photo at the station, onnxruntime (the same steps) | {1000 * med_station:.0f} ms |",
        f"| phone / station | {med_phone / med_station:.2f}x |",
        f"| phone and station agree (species and verdict) | {agree_phone} of {len(photos)} |",
        f"| int8 graph, dynamic quantisation | {int8_words} |",
        f"| int8 graph, static (QDQ, per channel, {CALIBRATION} training photos to calibrate) | {len(static) / 2**20:.1f} MB; "
        f"the float graph's species and verdict on {static_agree:.1%} of {len(many)} photos |",
        f"| of the phone's time per photo: preparing the photo, the network | {split[0]:.0f} ms, {split[1]:.0f} ms |",
        f"| shipped | {ships} |",
    ]
    return "\n".join(lines)
