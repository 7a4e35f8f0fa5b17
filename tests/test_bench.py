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
