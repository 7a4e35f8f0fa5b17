"""What the benches share: running one measurement in a child process, and the variants-by-set table.

Imported by every bench module and importing none of them at load time, so the benches' imports go
one way (a step names its module and function; the child process imports only that).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from fishcore.runtime import cpu_name

# A step's kind -> "module:function" taking the step's string arguments and returning a JSON-ready dict.
STEPS = {
    "train": "benchmarks.bench:train_step",
    "logreg": "benchmarks.bench:logreg_step",
    "knn": "benchmarks.bench:knn_step",
    "latency": "benchmarks.bench:latency_step",
    "probe": "benchmarks.bench:probe_step",
    "acc-train": "benchmarks.accuracy:train_step",
    "acc-logreg": "benchmarks.accuracy:logreg_step",
    "acc-heads": "benchmarks.accuracy:heads_step",
}


def phone_photo(source: str | os.PathLike, long_side: int = 4000, orientation: int = 6, quality: int = 90) -> bytes:
    """A photo as a phone's camera writes it, made from a small one: long_side pixels (upscaled, with a little
    sensor noise so that the JPEG has a camera's texture), the pixels stored sideways with the EXIF orientation
    that stands them up (6: turn 90 degrees clockwise to view), a camera's JPEG quality."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(source) as im:
        img = im.convert("RGB")
    scale = long_side / max(img.size)
    big = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(long_side + orientation)
    pixels = np.asarray(big, dtype=np.int16) + rng.integers(-3, 4, size=(big.height, big.width, 3), dtype=np.int16)
    big = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    stored = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
    if orientation in stored:
        big = big.transpose(stored[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def measure(kind: str, args: Sequence[str]) -> dict:
    """Run one step in this process and return its result."""
    module, function = STEPS[kind].split(":")
    return getattr(importlib.import_module(module), function)(*args)


def run_step(kind: str, *args: object, isolate: bool = True) -> dict:
    """One measurement in a child process of its own, so its peak memory is its alone.

    ``isolate=False`` runs it in this process instead (no memory figure: ``peak_mb`` is None). The tests use
    it to check the tables without paying torch's import (about 7 s here) once per row.
    """
    if not isolate:
        return {**measure(kind, [str(a) for a in args]), "peak_mb": None}
    cmd = [sys.executable, "-m", "benchmarks.common", kind, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark step {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[6:])


@contextlib.contextmanager
def station_process(env: dict, *args: str):
    """`python -m fishcore serve` on a free port of 127.0.0.1 with ``env``, until the block ends; its URL."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "fishcore", "serve", "--port", str(port), *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(30)


def measured_on(what: str) -> str:
    """The first words of every table: when, on which processor, with how many cores."""
    return f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({cpu_name()}){what}"


def variants_table(
    first: str, rows: Sequence[str], sets: Sequence[str], scores: dict[tuple[str, str], list[tuple]], seconds: bool = False
) -> list[str]:
    """Markdown rows of variants (rows) by sets: mean validation and test macro-F1 over the seeded splits of each set
    (and mean seconds when ``seconds``), then the mean validation over all sets, which is what decides.

    ``scores[(set, row)]`` lists (val, test[, seconds]) per split.
    """
    per_set = "val | {n} test | {n} s" if seconds else "val | {n} test"
    lines = [
        f"| {first} | " + " | ".join(f"{n} " + per_set.format(n=n) for n in sets) + " | mean val |",
        "|---|" + ("---|---|---|" if seconds else "---|---|") * len(sets) + "---|",
    ]
    for name in rows:
        cells, vals = [], []
        for set_name in sets:
            runs = scores[(set_name, name)]
            vals.append(statistics.mean(r[0] for r in runs))
            cells += [f"{vals[-1]:.3f}", f"{statistics.mean(r[1] for r in runs):.3f}"]
            if seconds:
                mean_s = statistics.mean(r[2] for r in runs)
                cells.append(f"{mean_s:.1f}" if mean_s < 10 else f"{mean_s:.0f}")  # a cached row takes under a second
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(vals):.3f} |")
    return lines


if __name__ == "__main__":  # the child process of run_step
    result = measure(sys.argv[1], sys.argv[2:])
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps(result))
