"""What every command group shares: the parser with one-line errors, progress bars, model names, the promise line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

from fishcore.events import EventName, Phase
from fishcore.settings import Paths


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the one-line form every other error of the CLI has."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def model_dir(name: str) -> Path:
    """A model folder as typed: 'default' is the bundled model."""
    return Paths.from_env().bundled_model if name == "default" else Path(name)


MODEL_HELP = "model folder ('default' for the bundled model)"


def progress_bar(desc: str, quiet: bool = False):
    """A (done, total) progress callback drawing a tqdm bar on stderr (None when quiet)."""
    if quiet:
        return None
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


class ProgressBars:
    """A training run's event stream as tqdm bars on stderr: one per counted phase, one for training with its losses."""

    PHASES: ClassVar[dict[str, str]] = {
        Phase.SCANNING: "scanning",
        Phase.CACHING: "caching features",
        Phase.EVALUATING: "evaluating",
    }

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.phases = {phase: progress_bar(words) for phase, words in self.PHASES.items()}
        self.bar = None
        self.val = ""

    def __call__(self, e) -> None:
        if e.name == EventName.PHASE and e.phase in self.phases and e.total:
            self.phases[e.phase](e.done, e.total)
        elif e.name == EventName.TRAIN_START:
            self.bar = self._tqdm(total=e.total_iterations, desc="training", unit="it", file=sys.stderr)
        elif e.name == EventName.BATCH_END and self.bar is not None:
            self.bar.update(e.iteration - self.bar.n)
            self.bar.set_postfix_str(f"epoch {e.epoch} loss {e.loss:.3f} acc {e.accuracy:.2f}{self.val}")
        elif e.name == EventName.VALIDATION:
            self.val = f" | val loss {e.val_loss:.3f} acc {e.val_accuracy:.3f}"
        elif e.name == EventName.TRAIN_END and self.bar is not None:
            self.bar.close()


def promise_words(card) -> str:
    """What the model's "confident" promises, and what backs it, in one line."""
    from fishcore.inference.calibration import Promise

    p = Promise.from_card(card.promise)
    if p is None:
        return (f"confident from {card.threshold:.0%}: one fixed threshold, chosen before thresholds were chosen per "
                "model; `fishcore verdicts MODEL` chooses this model's own from its validation photos")  # fmt: skip
    share = f"{p.confident_right} of {p.confident} confident answers right on {p.photos} held-out photos"
    if not p.backed:
        return f"confident from {p.threshold:.1%}: too few held-out photos to promise {p.precision:.0%} ({share})"
    kept = f"{p.confident_right} of {p.right} right answers confident"
    return (f"confident from {p.threshold:.1%}: at least {p.precision:.0%} of confident answers right "
            f"({p.level:.0%} sure; {share}; {kept})")  # fmt: skip
