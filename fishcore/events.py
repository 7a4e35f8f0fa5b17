"""What the library reports, as codes: the UIs (app, CLI) turn these into words in their own language.

Phases of a training run, why training stopped, the names of training events, and the exception a
stop request raises wherever a run happens to be.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import StrEnum


class Phase(StrEnum):
    """Where a training run is."""

    STARTING = "starting"
    SCANNING = "scanning"
    CACHING = "caching_features"
    TRAINING = "training"
    CALIBRATING = "calibrating"
    EVALUATING = "evaluating"
    SAVING = "saving"
    DONE = "done"


class StopReason(StrEnum):
    """Why training ended."""

    COMPLETED = "completed"  # every epoch ran
    EARLY_STOPPING = "early_stopping"  # validation loss stopped improving
    USER = "user"  # a stop request (Ctrl-C, the app's Stop button)
    BUDGET = "budget"  # the time budget ran out; the best weights so far are kept


class EventName(StrEnum):
    """Names of the training loop's events (TrainEvent.name)."""

    TRAIN_START = "train_start"
    BATCH_END = "batch_end"
    VALIDATION = "validation"
    EPOCH_END = "epoch_end"
    TRAIN_END = "train_end"
    CANDIDATE = "candidate"  # auto mode: one candidate recipe finished (message: its name)


class StopRequested(Exception):
    """Raised inside a phase when a stop was requested; the run ends cleanly from there."""


# (phase, done, total): progress of a phase, in items (files, photos, iterations).
Progress = Callable[[Phase, int, int], None]


def stop_checker(stop: threading.Event | None) -> Callable[[], None]:
    """A function that raises StopRequested once ``stop`` is set; call it between small units of work."""

    def check() -> None:
        if stop is not None and stop.is_set():
            raise StopRequested

    return check
