"""What the library reports, as codes and typed events: the UIs (app, CLI) turn these into words.

Phases of a training run, why training stopped, and the one event type a run emits for every kind of
progress (fishcore.training.run.TrainingRun.emit): the CLI's bars, a job's events.jsonl and status,
the Train page's curves and the model's metrics.jsonl all read these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
    BUDGET = "budget"  # the time limit ran out; the best weights so far are kept


class EventName(StrEnum):
    """The kinds of TrainEvent."""

    PHASE = "phase"  # a phase's progress: phase, done, total (items: files, photos)
    TRAIN_START = "train_start"  # a training loop begins: total_iterations, lr, precision
    BATCH_END = "batch_end"  # one optimiser step: epoch, iteration, loss and accuracy of the batch
    VALIDATION = "validation"  # one evaluation step: the training loss so far, val_loss, val_accuracy
    EPOCH_END = "epoch_end"  # loss and accuracy are the epoch's means
    TRAIN_END = "train_end"  # stop_reason, the best val_loss
    CANDIDATE = "candidate"  # auto mode: one candidate finished: candidate, val_macro_f1, val_loss


@dataclass(frozen=True)
class TrainEvent:
    """One thing that happened in a run. Each field means one thing; the fields a kind does not use are None."""

    name: EventName
    phase: str | None = None  # PHASE: which Phase
    done: int | None = None  # PHASE: items done so far
    total: int | None = None  # PHASE: items in the phase
    epoch: int | None = None
    iteration: int | None = None  # optimiser steps so far
    total_iterations: int | None = None  # steps planned (epochs x batches; early stopping may end sooner)
    loss: float | None = None  # training loss: of the batch, or the epoch's mean (EPOCH_END, VALIDATION)
    accuracy: float | None = None  # training accuracy, the same way
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_macro_f1: float | None = None  # CANDIDATE: what auto mode ranks candidates by
    lr: float | None = None
    elapsed: float | None = None  # seconds since this training loop (or auto mode's search) began
    eta: float | None = None  # seconds left at this pace, by total_iterations
    precision: str | None = None  # TRAIN_START: what the steps run in, fp32 or bf16
    stop_reason: str | None = None  # TRAIN_END: a StopReason
    candidate: str | None = None  # auto mode: which candidate this event belongs to

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainEvent:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class StopRequested(Exception):
    """Raised inside a phase when a stop was requested; the run ends cleanly from there."""
