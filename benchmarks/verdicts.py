"""`./run.sh bench --verdicts [ROOT]`: how honest the verdicts are, on photos the thresholds never saw.

For each set of ROOT (default ../shared/data) with species (lsfd, f4k, egu), a model is trained with the
defaults on it (its honest split, seed 0). Its verdicts are then counted on:

- its own test split: of the correctly classified photos, how many the open-set check lets through (not
  flagged unfamiliar or not a fish), and how many are also over the confidence threshold, "confident"
  (target >= 98 %; on hard data the model itself is unsure of many right answers);
- nonfish/: everyday photos, how many are not "confident" (target >= 95 %) and how many are "not a fish";
- every other set: fish of species the model does not know, how many are not "confident" (target >= 70 %).

The thresholds are fitted at training time on the model's own training and validation photos only; no
photo counted here took part. Nothing here asserts: it measures and prints.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from benchmarks.accuracy import SETS, BenchSet
from fishcore.config import DataConfig, TrainConfig
from fishcore.data.scan import scan
from fishcore.inference.openset import CONFIDENT, KNOWN, LOW_CONFIDENCE, NOT_A_FISH
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.runtime import cpu_name

NONFISH = "nonfish"


def _sample(root: Path, n: int, seed: int = 0) -> list[Path]:
    """Up to n readable photos of a folder, the same ones on every run."""
    files = sorted(root / item.path for item in scan(root, 16).items) if any(p.is_dir() for p in root.iterdir()) else []
    if not files:  # a flat folder (nonfish/): its image files directly
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    random.Random(seed).shuffle(files)
    return sorted(files[:n])


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} % ({part}/{whole})" if whole else "-"


def _row(predictor, name: str, test: list[tuple[Path, str]], nonfish: list[Path], others: dict[str, list[Path]]) -> dict:
    """One model's verdict counts: its own correct test photos, everyday photos, photos of other sets' species."""
    guesses = predictor.predict([path for path, _ in test], top_k=1)
    known = [p for p, (_, label) in zip(guesses, test, strict=True) if p.label == label]
    row = {
        "model": name,
        "known": _pct(sum(p.verdict == CONFIDENT for p in known), len(known)),
        "familiar": _pct(sum(p.reason in (KNOWN, LOW_CONFIDENCE) for p in known), len(known)),
    }
    if nonfish:
        verdicts = [p.verdict for p in predictor.predict(nonfish, top_k=1)]
        row["nonfish"] = _pct(sum(v != CONFIDENT for v in verdicts), len(verdicts))
        row["not_a_fish"] = _pct(sum(v == NOT_A_FISH for v in verdicts), len(verdicts))
    unknown = []
    for other, files in others.items():
        verdicts = [p.verdict for p in predictor.predict(files, top_k=1)]
        unknown.append(f"{other}: {_pct(sum(v != CONFIDENT for v in verdicts), len(verdicts))}")
    row["unknown"] = "; ".join(unknown) or "-"
    return row


def run_verdicts(
    root: str, sets: tuple[BenchSet, ...] = SETS, mode: str = "auto", per_set: int = 300, log=print, bundled: bool = False
) -> str:
    """Train a model per present set (or, ``bundled``, take the bundled model) and return the table of verdict rates."""
    from fishcore.data.split import resolve
    from fishcore.store.model_files import bundled_model_dir, read_card
    from fishcore.training.pipeline import train_folder
    from fishcore.training.run import RunOptions, TrainingRun

    base = Path(root).expanduser().resolve()
    present = [s for s in sets if (base / s.name).is_dir()]
    nonfish = _sample(base / NONFISH, per_set) if (base / NONFISH).is_dir() else []
    others = {s.name: _sample(base / s.name, per_set) for s in present}
    rows = []
    if bundled:
        card = read_card(bundled_model_dir())
        predictor = Predictor.load(bundled_model_dir(), engine="auto")
        test = resolve(card.test_root, card.split["test"])
        rows.append(_row(predictor, f"bundled: lsfd ({card.training.mode} mode, threshold {card.threshold:.2f})", test,
                         nonfish, {k: v for k, v in others.items() if k != "lsfd"}))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fishcore-verdicts-") as tmp:
        for s in [] if bundled else present:
            log(f"training on {s.name} ({mode} mode)...")
            start = time.perf_counter()
            data_cfg = DataConfig(group_pattern=s.group_pattern, seed=s.seeds[0])
            options = RunOptions(out_dir=str(Path(tmp) / s.name), cache_dir=str(Path(tmp) / "cache"))
            outcome = train_folder(base / s.name, TrainingRun(data_cfg, ModelConfig(), TrainConfig(mode=mode), options))
            seconds = time.perf_counter() - start
            predictor = Predictor.load(outcome.model_dir, engine="auto")
            test = [(base / s.name / r["file"], r["true"]) for r in outcome.test_report.rows]
            name = f"{s.name} ({outcome.card.training.recipe or mode}, {seconds:.0f} s, threshold {outcome.card.threshold:.2f})"
            rows.append(_row(predictor, name, test, nonfish, {k: v for k, v in others.items() if k != s.name}))
            log(str(rows[-1]))
    lines = [
        f"Verdicts on photos the thresholds never saw ({cpu_name()}; "
        + ("the bundled model)" if bundled else f"models trained with `--mode {mode}`, seed 0)"),
        "",
        "| model trained on | known species, correct: not flagged unfamiliar | of those, also over the confidence "
        "threshold: confident (>= 98 %) | everyday photos not confident (>= 95 %) | of those, said 'not a fish' "
        "| unknown species not confident (>= 70 %) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['familiar']} | {r['known']} | {r.get('nonfish', '-')} | {r.get('not_a_fish', '-')} "
            f"| {r['unknown']} |"
        )
    return "\n".join(lines)
