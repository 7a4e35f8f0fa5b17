"""One training run: its configs, where it reads and writes, its stop request, its time limit, its event stream.

Everything that trains (train_folder, the strategies, the training loop, the comparison) takes a
TrainingRun and reports through ``run.emit(TrainEvent)``; whoever watches a run subscribes to that one
stream (the CLI's bars, a job's events.jsonl and status, a model's metrics.jsonl).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fishcore.config import DataConfig, Setting, TrainConfig, settings_of
from fishcore.events import EventName, Phase, StopRequested, TrainEvent
from fishcore.models.config import ModelConfig

if TYPE_CHECKING:
    import torch

Listener = Callable[[TrainEvent], None]
# Every setting of a run's three configs, with its Rule: the CLI's `train` flags and the Train page's advanced
# settings are generated from these (a name in two configs, seed, is one setting that sets both).
TRAIN_SETTINGS: dict[str, Setting] = settings_of(DataConfig, ModelConfig, TrainConfig)


@dataclass(frozen=True)
class RunOptions:
    """Where a run reads and writes and what it records: nothing here changes what is learned."""

    out_dir: str | None = None  # the model folder to save (a version beside it when one is there)
    device: str = "auto"
    cache_dir: str | None = None  # feature and scan caches (default: the workspace's)
    events_path: str | None = None  # the whole event stream as JSON lines (a job's events.jsonl)
    notes: tuple[str, ...] = ()  # for the model card
    citation: str = ""  # the dataset's, for the model card


@dataclass(frozen=True)
class TimeLimit:
    """Seconds a run may take, counted from when it was set or, with ``from_training``, from the first training step.

    ``from_training`` is the comparison's fairness rule: every network gets the same training time however
    long its features took.
    """

    seconds: float
    from_training: bool = False
    set_at: float = field(default_factory=time.monotonic)

    def deadline(self, training_started: float) -> float:
        return (training_started if self.from_training else self.set_at) + self.seconds


class StopRequest:
    """A request to end a run at its next step, and whether to keep the best model so far; shared by its sub-runs."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.keep = True

    def set(self, keep: bool = True) -> None:
        self.keep = keep
        self.event.set()


class TrainingRun:
    """A run's configs, options, stop request, time limits and event stream; strategies derive sub-runs from it."""

    def __init__(
        self,
        data: DataConfig | None = None,
        model: ModelConfig | None = None,
        train: TrainConfig | None = None,
        options: RunOptions | None = None,
        *,
        listeners: Iterable[Listener] = (),
        limits: tuple[TimeLimit, ...] = (),
    ) -> None:
        self.data_cfg = data or DataConfig()
        self.model_cfg = model or ModelConfig()
        self.train_cfg = train or TrainConfig()
        self.options = options or RunOptions()
        self.limits = limits
        self.candidate: str | None = None  # auto mode: the candidate this (sub-)run trains
        self.generator: torch.Generator | None = None  # set by seed_everything when the run starts
        self._listeners = list(listeners)
        self._stop = StopRequest()

    # --- the event stream ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Listener:
        self._listeners.append(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def emit(self, event: TrainEvent) -> None:
        if self.candidate and event.candidate is None:
            event = replace(event, candidate=self.candidate)
        for listener in self._listeners:
            listener(event)

    def progress(self, phase: Phase, done: int, total: int) -> None:
        """A phase's progress in items; raises StopRequested when a stop was asked for (call between small steps)."""
        self.emit(TrainEvent(EventName.PHASE, phase=str(phase), done=done, total=total))
        self.check()

    # --- stopping -----------------------------------------------------------------------------

    def request_stop(self, keep: bool = True) -> None:
        """End the run at its next step; ``keep``: save the best model so far (else nothing)."""
        self._stop.set(keep)

    @property
    def stop_requested(self) -> bool:
        return self._stop.event.is_set()

    @property
    def keep_on_stop(self) -> bool:
        return self._stop.keep

    def check(self) -> None:
        if self._stop.event.is_set():
            raise StopRequested

    # --- time ---------------------------------------------------------------------------------

    def training_deadline(self) -> float | None:
        """The time.monotonic() by which the training loop starting now must end, or None."""
        now = time.monotonic()
        return min((limit.deadline(now) for limit in self.limits), default=None)

    def seconds_left(self) -> float | None:
        """Seconds left under the limits counted from when they were set (auto mode's search budget)."""
        now = time.monotonic()
        left = [limit.deadline(now) - now for limit in self.limits if not limit.from_training]
        return min(left) if left else None

    # --- sub-runs -----------------------------------------------------------------------------

    def derive(
        self,
        *,
        data: DataConfig | None = None,
        model: ModelConfig | None = None,
        train: TrainConfig | None = None,
        options: RunOptions | None = None,
        limit: TimeLimit | None = None,
        candidate: str | None = None,
        quiet: bool = False,
    ) -> TrainingRun:
        """A sub-run with other configs or a tighter limit, sharing this one's stream, stop request and generator.

        ``quiet``: its events go nowhere (a refit whose steps are not the run's progress); the stop is still shared.
        """
        sub = TrainingRun(data or self.data_cfg, model or self.model_cfg, train or self.train_cfg, options or self.options)
        sub.limits = (*self.limits, limit) if limit else self.limits
        sub.candidate = candidate or self.candidate
        sub.generator = self.generator
        sub._listeners, sub._stop = ([] if quiet else self._listeners), self._stop  # shared, not copied
        return sub

    @property
    def device(self) -> torch.device:
        from fishcore.runtime import resolve_device

        return resolve_device(self.options.device)

    @property
    def cache_root(self) -> Path:
        from fishcore.settings import Paths

        return Path(self.options.cache_dir) if self.options.cache_dir else Paths.from_env().cache


class EventLog:
    """Appends every event as one JSON line and flushes, so a crash loses at most the line being written.

    A phase's progress is written at most twice a second (plus its first and last count): a scan of
    200,000 files would otherwise write as many lines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._last: tuple[str | None, float] = (None, 0.0)

    def __call__(self, event: TrainEvent) -> None:
        if event.name == EventName.PHASE:
            now = time.monotonic()
            first = self._last[0] != event.phase
            if not (first or event.done == event.total or now - self._last[1] >= 0.5):
                return
            self._last = (event.phase, now)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event.to_dict()) + "\n")
            f.flush()


class MetricsLog:
    """The model's one metrics history: a row per evaluation step (VALIDATION events), flushed line by line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = 0

    def __call__(self, event: TrainEvent) -> None:
        if event.name != EventName.VALIDATION:
            return
        row = {k: v for k, v in event.to_dict().items() if k != "name"}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        self.rows += 1
