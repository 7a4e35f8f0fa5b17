import pytest

from benchmarks.bench import run_benchmark

from conftest import make_image_folder


@pytest.mark.slow
def test_bench_prints_every_row_with_measured_numbers(tmp_path):
    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 14)
    table = run_benchmark(str(data), naive_cap=60, photos=12, log=lambda m: None)
    print(table)
    for row in (
        "1. fishcore fast mode",
        "2. fishcore fast mode",
        "3. naive fine-tune",
        "4. frozen features",
        "4b. fishcore instant mode",
        "5. k-NN",
        "Speed-up of 1 over 3",
        "Machine speed probe",
        "| torch",
        "| onnxruntime",
    ):
        assert row in table
    assert "nan" not in table


@pytest.mark.slow
def test_accuracy_table_has_a_row_per_present_set_with_mean_and_spread(tmp_path):
    from benchmarks.accuracy import BenchSet, Setting, run_accuracy

    make_image_folder(tmp_path / "tiny", ["red", "green", "blue"], 14)
    sets = (BenchSet("tiny", None, (0, 1), "three colours"), BenchSet("absent", None, (0,), "not on disk"))
    grid = (Setting("--mode instant", train={"mode": "instant"}),)
    table = run_accuracy(str(tmp_path), sets=sets, grid=grid, log=lambda m: None)
    print(table)
    rows = [line for line in table.splitlines() if line.startswith("| tiny")]
    assert len(rows) == 1 and "absent" not in table
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "2"  # two seeded splits
    assert "±" in cells[2] and "±" in cells[5]
    assert cells[4] == "`--mode instant`"
    assert float(cells[2].split()[0]) > 0.5  # colours are easy; chance is 0.33
