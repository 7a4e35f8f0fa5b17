"""The training loop: Adam, per-epoch shuffling, periodic validation, early stopping, events, stop requests."""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fishcore.config import TrainConfig
from fishcore.data.dataset import load_image_file
from fishcore.events import EventName, StopReason, StopRequested, stop_checker
from fishcore.runtime import autocast, resolve_precision

EVENTS = tuple(e for e in EventName if e != EventName.CANDIDATE)  # what fit() emits


@dataclass
class TrainEvent:
    """What a training loop reports; the CLI bar, the JSONL log and the app's charts all read these."""

    name: str
    epoch: int = 0
    iteration: int = 0
    total_iterations: int = 0
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    message: str = ""  # a code: the precision (train_start), the stop reason (train_end)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


Callback = Callable[[TrainEvent], None]


class ImageListDataset(Dataset):
    """(path, class index) pairs decoded with load_image and passed through a transform."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Callable, image_size: int) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[i]
        return self.transform(load_image_file(path, min_size=self.image_size)), target


@dataclass
class TrainResult:
    """How a run ended: its history rows, best validation loss, and why it stopped."""

    history: list[dict] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_iteration: int = 0
    epochs_run: int = 0
    iterations: int = 0
    seconds: float = 0.0
    stop_reason: str = StopReason.COMPLETED
    precision: str = "fp32"  # what the training steps ran in: fp32 or bf16 (mixed)


class JsonlLog:
    """Appends one JSON line per event and flushes, so a crash loses at most the line being written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: TrainEvent) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event.to_dict()) + "\n")
            f.flush()


def balanced_weights(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Per-class loss weights n / (classes x n_class); a class without training photos gets weight 0."""
    counts = torch.bincount(torch.as_tensor(list(targets), dtype=torch.long), minlength=num_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights


@torch.no_grad()
def compute_logits(
    model: nn.Module, loader: DataLoader, device: torch.device, check: Callable[[], None] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of a whole loader in eval mode; ``check`` runs before each batch (it may raise StopRequested)."""
    model.eval()
    logits, targets = [], []
    for x, y in loader:
        if check:
            check()
        logits.append(model(x.to(device, memory_format=torch.channels_last)).float().cpu())
        targets.append(y)
    return torch.cat(logits), torch.cat(targets)


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    stop: threading.Event | None = None,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
    val_model: nn.Module | None = None,
    deadline: float | None = None,
    class_weights: torch.Tensor | None = None,
) -> TrainResult:
    """Train with Adam, shuffling every epoch, validating every cfg.val_every iterations and at each epoch end.

    Early stopping watches validation loss; the best weights are restored at the end, also after a
    stop request, which is honoured after the current batch (or validation batch). ``val_model`` runs
    the validation set when it holds something other than the model's input (cached trunk features).
    ``deadline`` (time.monotonic()) ends training like early stopping, with the best weights so far.
    ``class_weights`` (balanced_weights) weigh the training loss when cfg.class_weights is on; it also uses
    cfg's label smoothing. Validation loss, which early stopping watches, is plain cross-entropy.
    """
    device = device or torch.device("cpu")
    precision = resolve_precision(cfg.precision, device)
    # channels_last runs MobileNet/ResNet convolutions about 1.7x faster on CPU (measured, batch 16-32).
    model.to(device, memory_format=torch.channels_last)
    # num_workers=0: worker processes can hang or fork badly inside a server process (Streamlit).
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, num_workers=0, generator=generator)
    val_loader = DataLoader(val_set, batch_size=64, shuffle=False, num_workers=0) if val_set is not None else None
    check = stop_checker(stop)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1) if cfg.lr_schedule == "plateau" else None
    )
    loss_fn = nn.CrossEntropyLoss()
    train_loss_fn = nn.CrossEntropyLoss(
        weight=class_weights.to(device) if cfg.class_weights and class_weights is not None else None,
        label_smoothing=cfg.label_smoothing,
    )
    total = cfg.epochs * len(loader)
    result = TrainResult(precision=precision)
    best_state = None
    bad_validations = 0
    start = time.perf_counter()

    def emit(event: TrainEvent) -> None:
        for cb in callbacks:
            cb(event)

    def current_lr() -> float:
        return float(optimizer.param_groups[0]["lr"])

    def timing(iteration: int) -> tuple[float, float | None]:
        elapsed = time.perf_counter() - start
        eta = elapsed / iteration * (total - iteration) if iteration else None
        return elapsed, eta

    def validate(epoch: int, iteration: int, loss: float | None, acc: float | None) -> bool:
        """Run validation, emit it, track the best weights; True when early stopping triggers."""
        nonlocal best_state, bad_validations
        if val_loader is None or len(val_set) == 0:
            return False
        try:
            with autocast(device, precision):
                logits, targets = compute_logits(val_model or model, val_loader, device, check)
        except StopRequested:  # a stop during validation ends the run like one between batches
            model.train()
            return False
        model.train()
        val_loss = float(loss_fn(logits, targets))
        val_acc = float((logits.argmax(1) == targets).float().mean())
        elapsed, eta = timing(iteration)
        row = TrainEvent(EventName.VALIDATION, epoch, iteration, total, loss, acc, val_loss, val_acc, current_lr(), elapsed, eta)
        result.history.append(row.to_dict())
        emit(row)
        if val_loss < result.best_val_loss - 1e-6:
            result.best_val_loss, result.best_iteration = val_loss, iteration
            best_state = copy.deepcopy(model.state_dict())
            bad_validations = 0
        else:
            bad_validations += 1
        if scheduler is not None:
            scheduler.step(val_loss)
        return bad_validations >= cfg.patience

    emit(TrainEvent(EventName.TRAIN_START, 0, 0, total, lr=cfg.lr, message=precision))  # message: the precision
    iteration = 0
    running_loss, running_correct, running_n = 0.0, 0, 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for x, y in loader:
            x, y = x.to(device, memory_format=torch.channels_last), y.to(device)
            with autocast(device, precision):
                logits = model(x).float()
            loss = train_loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
            batch_loss = float(loss.detach())
            batch_acc = float((logits.argmax(1) == y).float().mean())
            running_loss += batch_loss * len(y)
            running_correct += int((logits.argmax(1) == y).sum())
            running_n += len(y)
            elapsed, eta = timing(iteration)
            row = TrainEvent(
                EventName.BATCH_END,
                epoch,
                iteration,
                total,
                batch_loss,
                batch_acc,
                lr=current_lr(),
                elapsed=elapsed,
                eta=eta,
            )
            result.history.append(row.to_dict())
            emit(row)
            if stop is not None and stop.is_set():
                result.stop_reason = StopReason.USER
                break
            if deadline is not None and time.monotonic() > deadline:
                result.stop_reason = StopReason.BUDGET
                break
            periodic = cfg.val_every and iteration % cfg.val_every == 0 and iteration % len(loader) != 0
            if periodic and validate(epoch, iteration, batch_loss, batch_acc):
                result.stop_reason = StopReason.EARLY_STOPPING
                break
        result.epochs_run = epoch
        if result.stop_reason != StopReason.COMPLETED:
            break
        epoch_loss = running_loss / max(running_n, 1)
        epoch_acc = running_correct / max(running_n, 1)
        running_loss, running_correct, running_n = 0.0, 0, 0
        stop_now = validate(epoch, iteration, epoch_loss, epoch_acc)
        elapsed, eta = timing(iteration)
        emit(
            TrainEvent(
                EventName.EPOCH_END,
                epoch,
                iteration,
                total,
                epoch_loss,
                epoch_acc,
                lr=current_lr(),
                elapsed=elapsed,
                eta=eta,
            )
        )
        if stop_now:
            result.stop_reason = StopReason.EARLY_STOPPING
            break
        if stop is not None and stop.is_set():
            result.stop_reason = StopReason.USER
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.iterations = iteration
    result.seconds = time.perf_counter() - start
    emit(
        TrainEvent(
            EventName.TRAIN_END,
            result.epochs_run,
            iteration,
            total,
            val_loss=result.best_val_loss if math.isfinite(result.best_val_loss) else None,
            elapsed=result.seconds,
            eta=0.0,
            message=result.stop_reason,
        )
    )
    return result
