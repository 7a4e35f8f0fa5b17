"""`.venv/bin/python -m benchmarks.verdict_cost [LSFD]`: what the verdicts add per photo, side by side.

The bundled model's network with the verdict signals (the Scorer) against its classifier alone, both in
the app's engine, batch 1, on 60 LSFD photos x 3 rounds, interleaved. Network time only (no decoding).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from fishcore.inference.engine import Engine
from fishcore.inference.predict import Predictor
from fishcore.runtime import cpu_name
from fishcore.store.model_files import bundled_model_dir


def main(lsfd: str = "../shared/data/lsfd") -> None:
    predictor = Predictor.load(bundled_model_dir(), engine="auto")
    plain = Engine(predictor.model, predictor.card.image_size, "auto")
    photos = sorted(p for d in sorted(Path(lsfd).iterdir()) if d.is_dir() for p in sorted(d.iterdir()))[::30][:60]
    batches = [predictor.preprocess(predictor.read(p)).unsqueeze(0) for p in photos]
    engines = {"with verdicts": predictor.engine, "classifier only": plain}
    for engine in engines.values():
        for x in batches[:5]:
            engine(x)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(3):
        for name, engine in engines.items():
            for x in batches:
                start = time.perf_counter()
                engine(x)
                times[name].append(time.perf_counter() - start)
    print(f"{cpu_name()}, {predictor.engine_name}, batch 1, network only")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values) * 1000:.1f} ms per photo ({len(values)} runs)")


if __name__ == "__main__":
    main(*sys.argv[1:])
