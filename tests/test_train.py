import itertools
import json
import math
import time

import pytest
import torch

from fishcore.config import AugmentConfig, TrainConfig
from fishcore.data.augment import build_transforms
from fishcore.data.scan import scan
from fishcore.errors import ConfigError
from fishcore.events import EventName, StopRequested, TrainEvent
from fishcore.inference.calibration import fit_temperature
from fishcore.models.config import ModelConfig
from fishcore.models.net import build_model
from fishcore.training.loop import Clock, EarlyStopping, ImageListDataset, fit
from fishcore.training.run import EventLog, MetricsLog, RunOptions, TimeLimit, TrainingRun

from conftest import make_image_folder

SMALL = ModelConfig(pretrained=False, image_size=32, head_width=16, freeze_until=10)


def _run(cfg: TrainConfig, *listeners, limits=()) -> TrainingRun:
    run = TrainingRun(train=cfg, options=RunOptions(device="cpu"), listeners=listeners, limits=limits)
    run.generator = torch.Generator().manual_seed(0)
    return run


def _datasets(root, n=10):
    result = scan(make_image_folder(root, ["a", "b", "c"], n))
    samples = [(str(root / i.path), result.classes.index(i.label)) for i in result.items]
    train = ImageListDataset(samples, build_transforms(AugmentConfig(), True, 32), 32)
    val = ImageListDataset(samples[::3], build_transforms(None, False, 32), 32)
    return train, val


def test_events_log_and_validation_schedule(tmp_path):
    train, val = _datasets(tmp_path / "d")
    model, _ = build_model(SMALL, 3)
    events = []
    log = tmp_path / "log.jsonl"
    cfg = TrainConfig(epochs=2, batch_size=8, val_every=2, patience=100)
    metrics = MetricsLog(tmp_path / "metrics.jsonl")
    result = fit(model, train, val, _run(cfg, events.append, EventLog(log), metrics))
    names = [e.name for e in events]
    assert set(names) == set(EventName) - {EventName.PHASE, EventName.CANDIDATE}
    assert names[0] == "train_start" and names[-1] == "train_end"
    assert names.count("batch_end") == 2 * 4 and names.count("epoch_end") == 2
    # Every 2 iterations (2 of 4 per epoch, minus the epoch-end one) plus each epoch end.
    assert names.count("validation") == 4
    batch = next(e for e in events if e.name == "batch_end")
    assert batch.loss is not None and batch.lr == 3e-4 and batch.eta is not None and batch.elapsed > 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["name"] for row in lines] == names
    assert TrainEvent.from_dict(lines[1]) == events[1]  # the log holds the events, field for field
    assert result.stop_reason == "completed" and result.iterations == 8 and result.evaluations == 4
    # The one metrics history: a row per evaluation step, nothing else.
    rows = [json.loads(line) for line in metrics.path.read_text().splitlines()]
    assert len(rows) == metrics.rows == 4 and all("val_loss" in r and "name" not in r for r in rows)
    assert [r["iteration"] for r in rows] == [e.iteration for e in events if e.name == "validation"]


def test_stop_request_is_honoured_within_one_batch(tmp_path):
    train, val = _datasets(tmp_path / "d")
    model, _ = build_model(SMALL, 3)
    seen = []

    def on_event(e):
        seen.append(e.name)
        if e.name == "batch_end" and e.iteration == 3:
            run.request_stop()

    run = _run(TrainConfig(epochs=5, batch_size=4, val_every=0), on_event)
    result = fit(model, train, val, run)
    assert result.stop_reason == "user"
    assert result.iterations == 3 and seen.count("batch_end") == 3
    assert seen[-1] == "train_end"


def test_early_stopping_restores_the_best_weights(tmp_path):
    train, val = _datasets(tmp_path / "d")
    model, _ = build_model(SMALL, 3)
    snapshots = {}

    def on_event(e):
        if e.name == "validation":
            snapshots[e.iteration] = (e.val_loss, {k: v.clone() for k, v in model.state_dict().items()})

    # A huge learning rate makes validation loss bounce, so patience 1 stops early.
    result = fit(model, train, val, _run(TrainConfig(epochs=6, batch_size=8, lr=0.5, val_every=1, patience=1), on_event))
    assert result.stop_reason == "early_stopping"
    best_iter = min(snapshots, key=lambda i: snapshots[i][0])
    assert result.best_iteration == best_iter
    for k, v in snapshots[best_iter][1].items():
        assert torch.equal(model.state_dict()[k], v), k


def test_training_learns_a_separable_task(tmp_path):
    # Coloured discs on noise: any correct fine-tuning separates them. Measured on AMD EPYC (fp32 and
    # emulated bf16) over seeds 0-2: best-validation accuracy 0.89-0.96; the bound leaves a wide margin
    # above chance (0.33) and below those, so no processor's rounding decides the outcome.
    result = scan(make_image_folder(tmp_path / "d", ["a", "b", "c"], 30))
    samples = [(str(tmp_path / "d" / i.path), result.classes.index(i.label)) for i in result.items]
    train = ImageListDataset(samples[1::2], build_transforms(AugmentConfig(), True, 64), 64)
    val = ImageListDataset(samples[::2], build_transforms(None, False, 64), 64)  # unseen images
    torch.manual_seed(0)
    model, _ = build_model(ModelConfig(image_size=64, head_width=16), 3)  # ImageNet backbone, default freeze
    rows = []
    fit(model, train, val, _run(TrainConfig(epochs=15, batch_size=8, lr=1e-3, val_every=0, patience=100), rows.append))
    best = min((e for e in rows if e.name == "validation"), key=lambda e: e.val_loss)
    assert best.val_accuracy >= 0.75


def test_temperature_softens_overconfident_logits():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, 3, generator=gen) * 2
    targets = torch.multinomial(torch.softmax(logits, 1), 1, generator=gen).squeeze(1)  # calibrated at T=1
    assert 0.85 < fit_temperature(logits, targets) < 1.15
    assert 3 < fit_temperature(logits * 4, targets) < 5
    assert fit_temperature(logits * 100, targets * 0 + logits.argmax(1)) == 0.5  # never sharpen beyond 2x


def test_precision_choice_and_bf16_training(tmp_path, monkeypatch):
    import fishcore.runtime as runtime

    monkeypatch.delenv("FISHCORE_PRECISION", raising=False)
    cpu = torch.device("cpu")
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(runtime, "native_bf16", lambda device, native=native: native)
        assert runtime.resolve_precision("auto", cpu) == expected
    assert runtime.resolve_precision("fp32", cpu) == "fp32" and runtime.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        runtime.resolve_precision("fp8", cpu)
    # FISHCORE_PRECISION decides what auto means for the whole process; explicit choices stay.
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    monkeypatch.setenv("FISHCORE_PRECISION", "fp32")
    assert runtime.resolve_precision("auto", cpu) == "fp32" and runtime.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setenv("FISHCORE_PRECISION", "bf16")
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setenv("FISHCORE_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="FISHCORE_PRECISION"):
        runtime.resolve_precision("auto", cpu)
    monkeypatch.delenv("FISHCORE_PRECISION")
    # Mixed precision runs the convolutions in bfloat16 but keeps float32 weights and a float32 loss.
    train, val = _datasets(tmp_path / "d")
    model, _ = build_model(SMALL, 3)
    events = []
    result = fit(model, train, val, _run(TrainConfig(epochs=1, batch_size=8, precision="bf16"), events.append))
    assert result.precision == "bf16" and events[0].precision == "bf16"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(e.loss) for e in events if e.name == "batch_end")


def test_balanced_class_weights_make_rare_classes_count_as_much():
    from fishcore.training.loop import balanced_weights

    w = balanced_weights([0] * 6 + [1] * 2 + [2] * 4, num_classes=4)
    assert w.tolist() == pytest.approx([12 / (4 * 6), 12 / (4 * 2), 12 / (4 * 4), 0.0])
    counts = torch.tensor([6.0, 2.0, 4.0])
    assert (w[:3] * counts).tolist() == pytest.approx([3.0, 3.0, 3.0])  # each present class weighs the same in total


def test_plateau_schedule_halves_the_rate_and_the_loss_options_train(tmp_path):
    from torch import nn

    class Unchanging(nn.Module):
        """Validation logits that never improve, whatever training does: the schedule must cut the rate."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(len(x), 3)

    train, val = _datasets(tmp_path / "d")
    model, _ = build_model(SMALL, 3)
    events = []
    cfg = TrainConfig(
        epochs=4, batch_size=8, lr=0.1, val_every=1, patience=100, lr_schedule="plateau", label_smoothing=0.1, class_weights=True
    )
    weights = torch.tensor([1.0, 2.0, 0.5])
    result = fit(model, train, val, _run(cfg, events.append), val_model=Unchanging(), class_weights=weights)
    rates = [e.lr for e in events if e.name == "validation"]
    # Halved after every second validation without a lower loss: 0.1, 0.1, 0.1, 0.05, ...
    assert rates[:3] == [0.1, 0.1, 0.1] and rates[3] == pytest.approx(0.05) and min(rates) < 0.01
    assert all(b <= a for a, b in itertools.pairwise(rates))
    assert result.iterations == 4 * 4 and all(math.isfinite(e.loss) for e in events if e.name == "batch_end")
    plain = TrainConfig(epochs=1, batch_size=8, lr=0.1, val_every=1)
    rows = []
    fit(build_model(SMALL, 3)[0], train, val, _run(plain, rows.append), val_model=Unchanging())
    assert {e.lr for e in rows if e.name == "validation"} == {0.1}


@pytest.mark.parametrize(
    "field,value", [("lr_schedule", "cosine"), ("label_smoothing", 1.0), ("label_smoothing", -0.1), ("class_weights", "yes")]
)
def test_recipe_settings_are_checked(field, value):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**{field: value})
    assert exc.value.field == field


def test_early_stopping_counts_patience_and_keeps_the_best_weights():
    from torch import nn

    model = nn.Linear(2, 1)
    early = EarlyStopping(patience=2)
    assert not early.step(1.0, 10, model)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not early.step(1.0 - 1e-9, 20, model)  # not lower by more than min_delta: a bad validation
    assert early.step(2.0, 30, model)  # the second in a row: patience has run out
    assert early.best_loss == 1.0 and early.best_iteration == 10
    early.restore(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in best.items())
    assert not early.step(0.5, 40, model) and early.bad == 0  # an improvement resets the count


def test_one_time_limit_from_the_run_or_from_the_first_training_step():
    clock = Clock(total=10, deadline=None)
    assert clock.eta is None and not clock.out_of_time()
    clock.iteration = 5
    assert clock.eta == pytest.approx(clock.elapsed, rel=0.5)
    now = time.monotonic()
    from_run = TimeLimit(60, set_at=now - 50)  # 10 s left, whenever training starts
    from_training = TimeLimit(5, from_training=True)  # 5 s from the first step
    run = TrainingRun(limits=(from_run, from_training))
    assert run.training_deadline() == pytest.approx(time.monotonic() + 5, abs=0.5)
    assert run.seconds_left() == pytest.approx(10, abs=0.5)  # limits from training do not spend the search budget
    sub = run.derive(limit=TimeLimit(2), candidate="c")
    assert sub.training_deadline() == pytest.approx(time.monotonic() + 2, abs=0.5) and run.training_deadline() > now + 4
    assert TrainingRun().training_deadline() is None and TrainingRun().seconds_left() is None


def test_sub_runs_share_the_stream_and_the_stop_request():
    events = []
    run = TrainingRun(listeners=[events.append])
    sub = run.derive(candidate="fast")
    sub.emit(TrainEvent(EventName.BATCH_END, iteration=1))
    run.progress("scanning", 1, 2)
    assert [e.candidate for e in events] == ["fast", None]
    assert events[1] == TrainEvent(EventName.PHASE, phase="scanning", done=1, total=2)
    run.request_stop(keep=False)
    assert sub.stop_requested and not sub.keep_on_stop
    with pytest.raises(StopRequested):
        sub.progress("caching_features", 0, 1)


def test_the_event_log_writes_phase_progress_at_most_twice_a_second(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    for done in range(1000):
        log(TrainEvent(EventName.PHASE, phase="scanning", done=done, total=999))
    log(TrainEvent(EventName.BATCH_END, iteration=1))
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert rows[0]["done"] == 0 and rows[-2]["done"] == 999 and rows[-1]["name"] == "batch_end"
    assert len(rows) < 10  # the first, the last and one per half second
