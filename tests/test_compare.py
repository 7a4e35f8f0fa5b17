"""The comparison (fishcore/training/compare.py): rows on one split, saved as they finish, skips said plainly."""

import csv
import json
import time

import pytest

from fishcore.training.compare import CSV_FILE, RESULTS_FILE, UNSUPPORTED, Recipe, compare, read_comparison, recipes
from fishcore.training.jobs import Job, JobSpec, run_job

from conftest import make_image_folder
from test_cli import _cli_here, run_cli


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("cmp") / "data", ["red", "green", "blue"], per_class=14, size=64)


def _rows(*names):
    return [r for r in recipes() if r.name in names]


def test_rows_share_one_split_and_are_saved_with_their_measurements(colours, tmp_path):
    out = tmp_path / "out"
    rows = _rows("residual head (paper)", "instant", "colour histograms + k-NN", "resnet50")
    result = compare(colours, out, seconds_per_row=8, rows=rows)
    assert result.finished and [r.name for r in result.rows[:4]] == [
        "residual head (paper)",
        "instant",
        "colour histograms + k-NN",
        "resnet50",
    ]
    by_name = {r.name: r for r in result.rows}
    for name in ("residual head (paper)", "instant"):
        r = by_name[name]
        assert 0 <= r.accuracy <= 1 and 0 <= r.macro_f1 <= 1 and r.train_seconds > 0 and r.latency_ms > 0
        assert 0 < r.trained_params < r.total_params
    assert by_name["instant"].trained_params < by_name["residual head (paper)"].trained_params  # only the linear classifier
    assert by_name["colour histograms + k-NN"].accuracy >= 0.9  # colours are exactly what histograms see
    assert by_name["resnet50"].skipped and "not on this machine" in by_name["resnet50"].skipped  # no weights here
    for arch in UNSUPPORTED:
        assert "no stage split" in by_name[arch].skipped
    again = read_comparison(out)
    assert again.to_dict() == result.to_dict() and again.test_photos == result.test_photos > 0
    with (out / CSV_FILE).open() as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table] == [r.name for r in result.rows]


def test_a_stop_keeps_the_rows_done_so_far(colours, tmp_path):
    from fishcore.training.run import TrainingRun

    def after_first(e):
        if e.name == "phase" and e.phase == "training" and e.done == 1:
            run.request_stop()

    run = TrainingRun(listeners=[after_first])
    rows = [Recipe("colour histograms + k-NN", "baseline", kind="histogram"), *_rows("instant")]
    result = compare(colours, tmp_path / "out", 5, rows=rows, run=run)
    assert not result.finished and [r.name for r in result.rows] == ["colour histograms + k-NN"]
    assert json.loads((tmp_path / "out" / RESULTS_FILE).read_text())["finished"] is False


def test_compare_job_runs_in_the_worker_and_reports_rows(colours, tmp_path, monkeypatch):
    import fishcore.training.compare as compare_module
    from fishcore.config import DataConfig
    from fishcore.store.jsonfile import write_json

    # The worker's own code path (run_job), in this process, with two quick rows instead of all of them.
    monkeypatch.setattr(compare_module, "recipes", lambda: _rows("colour histograms + k-NN", "instant"))
    job_dir = tmp_path / "jobs" / "j1"
    job_dir.mkdir(parents=True)
    spec = JobSpec(str(colours), str(tmp_path / "cmp"), DataConfig(seed=1), kind="compare", seconds_per_network=10)
    write_json(job_dir / "spec.json", spec.to_dict())
    write_json(job_dir / "status.json", {"state": "starting"})
    assert run_job(job_dir) == 0
    status = Job(job_dir).status()
    assert status["state"] == "finished" and status["done"] == status["total"] == 2
    result = read_comparison(tmp_path / "cmp")
    assert [r.name for r in result.rows[:2]] == ["instant", "colour histograms + k-NN"] and result.seed == 1
    assert Job(job_dir).spec.kind == "compare"


def test_cli_compare_prints_the_table_and_refuses_a_tiny_budget(colours, tmp_path, monkeypatch, capsys):
    import fishcore.training.compare as compare_module

    bad = run_cli("compare", colours, "--out", tmp_path / "o", "--seconds-per-network", "1", check=False)
    assert bad.returncode == 2 and "--seconds-per-network" in bad.stderr
    # The same main() in this process, with two quick rows instead of all of them.
    monkeypatch.setattr(compare_module, "recipes", lambda: _rows("colour histograms + k-NN", "resnet18"))
    done = _cli_here(tmp_path, monkeypatch, capsys, "compare", colours, "--out", tmp_path / "o", "--seconds-per-network", "5")
    assert done.returncode == 0, done.stderr
    assert "colour histograms + k-NN" in done.stdout and "ms/photo" in done.stdout and "accuracy" in done.stdout
    assert "resnet18" in done.stdout and "skipped: its ImageNet weights" in done.stdout
    assert "alexnet" in done.stdout and (tmp_path / "o" / RESULTS_FILE).is_file()


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_every_network_gets_the_same_training_time_after_its_features(colours, tmp_path, mode):
    """A time limit counted from the first training step bounds the loop however long features took (compare's rule)."""
    import torch

    from fishcore.config import DataConfig, TrainConfig
    from fishcore.models.config import ModelConfig
    from fishcore.training.pipeline import prepare_data
    from fishcore.training.run import RunOptions, TimeLimit, TrainingRun
    from fishcore.training.strategies import STRATEGIES

    _, _, data = prepare_data(colours, DataConfig(), tmp_path, lambda *a: None)
    cfg = TrainConfig(mode=mode, epochs=200, batch_size=4, patience=1000)
    model_cfg = ModelConfig(image_size=64, head_width=16)
    # Set 10 s before: counted from the run it would be long spent; counted from training it is 0.01 s from now.
    limit = TimeLimit(0.01, from_training=True, set_at=time.monotonic() - 10)
    run = TrainingRun(model=model_cfg, train=cfg, options=RunOptions(device="cpu", cache_dir=str(tmp_path)), limits=(limit,))
    run.generator = torch.Generator()
    fitted = STRATEGIES[mode](run, data)
    assert fitted.result.stop_reason == "budget" and fitted.result.iterations <= 2


def test_rows_with_the_same_frozen_trunk_share_its_features_and_are_charged_for_them(colours, tmp_path, monkeypatch):
    """The paper's model and the one without its residual head read one feature cache; the second row's seconds
    still include what computing those features cost (measured by the first)."""
    from fishcore.training import strategies

    computed = []
    real = strategies._cached_features

    def recording(run, data, store, augment, k):
        out = real(run, data, store, augment, k)
        computed.append(out[3]["views_computed"])
        return out

    monkeypatch.setattr(strategies, "_cached_features", recording)
    result = compare(colours, tmp_path / "out", seconds_per_row=3, rows=_rows("residual head (paper)", "no residual head"))
    paper, linear = result.rows[:2]
    assert computed[0] > 0 and computed[1] == 0  # the second row computed no view: it read the first row's
    assert paper.features_from == "" and linear.features_from == "residual head (paper)"
    assert linear.feature_seconds == paper.feature_seconds > 0 and linear.train_seconds >= linear.feature_seconds
    assert read_comparison(tmp_path / "out").rows[1].features_from == "residual head (paper)"
