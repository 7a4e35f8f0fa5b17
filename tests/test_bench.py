import re

import pytest

from benchmarks.bench import run_benchmark

from conftest import make_image_folder, require_shared


@pytest.mark.slow
def test_bench_prints_every_row_with_measured_numbers(tmp_path):
    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 14)
    # Rows in this process: the table is the same, without torch's import (7 s here) once per row.
    table = run_benchmark(str(data), naive_cap=8, photos=12, log=lambda m: None, isolate=False)
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


def test_a_bench_step_runs_in_a_child_process_of_its_own_with_its_peak_memory():
    from benchmarks.common import run_step

    alone = run_step("probe")
    assert alone["gflops"] > 0 and alone["peak_mb"] > 50  # a child that imported torch
    shared = run_step("probe", isolate=False)
    assert shared["gflops"] > 0 and shared["peak_mb"] is None


@pytest.mark.slow
def test_accuracy_table_has_a_row_per_present_set_with_mean_and_spread(tmp_path):
    from benchmarks.accuracy import BenchSet, Setting, run_accuracy

    make_image_folder(tmp_path / "tiny", ["red", "green", "blue"], 14)
    sets = (BenchSet("tiny", None, (0, 1), "three colours"), BenchSet("absent", None, (0,), "not on disk"))
    grid = (Setting("--mode instant", train={"mode": "instant"}),)
    table = run_accuracy(str(tmp_path), sets=sets, grid=grid, log=lambda m: None, isolate=False)
    print(table)
    rows = [line for line in table.splitlines() if line.startswith("| tiny:")]
    assert len(rows) == 1 and "absent" not in table
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "2"  # two seeded splits
    assert "±" in cells[2] and "±" in cells[5]
    assert cells[4] == "`--mode instant`"
    assert float(cells[2].split()[0]) > 0.5  # colours are easy; chance is 0.33
    # The heads table follows: one row per backbone, the old and new instant heads beside scikit-learn's probe.
    heads = [line for line in table.splitlines() if line.startswith("| tiny (2 splits)")]
    assert [c.split("|")[2].strip() for c in heads] == ["mobilenet_v2", "efficientnet_lite2"], table
    for row in heads:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "photos" in cells[2] and all("±" in c and c.endswith(" s)") for c in cells[3:6])


@pytest.mark.slow
def test_sessions_bench_times_eight_sessions_alone_and_beside_a_training_job(tmp_path):
    from benchmarks.sessions import run_sessions

    from conftest import lsfd_subset

    lsfd_subset(tmp_path / "lsfd", per_class=12)
    table = run_sessions(str(tmp_path), log=lambda m: None)
    print(table)
    rows = [line for line in table.splitlines() if line.startswith("| no training") or line.startswith("| while")]
    assert len(rows) == 3 and "it was training" in rows[1] and "logged" in rows[2]
    for row in rows:
        p50, p95, rate = (float(c) for c in row.strip("|").split("|")[1:4])
        assert 0 < p50 <= p95 and rate > 0
    # Every answer of the logged round is one entry: none lost, none twice.
    written = re.search(r"(\d+) entries written for (\d+) answers, (\d+) distinct", table)
    assert written and len(set(written.groups())) == 1 and int(written.group(1)) > 0, table
    assert "Logging alone added p50" in table


@pytest.mark.slow
def test_verdicts_bench_counts_known_everyday_and_unknown_photos(tmp_path):
    import shutil

    from benchmarks.accuracy import BenchSet
    from benchmarks.verdicts import run_verdicts

    from conftest import SHARED_DATA, lsfd_subset, require_shared

    lsfd_subset(tmp_path / "lsfd", per_class=20)
    nonfish = tmp_path / "nonfish"
    nonfish.mkdir()
    for p in sorted(require_shared(SHARED_DATA / "nonfish").iterdir())[:20]:
        shutil.copy(p, nonfish / p.name)
    f4k = tmp_path / "f4k"
    for d in sorted(require_shared(SHARED_DATA / "f4k").iterdir()):
        (f4k / d.name).mkdir(parents=True)
        for p in sorted(d.iterdir())[:5]:
            shutil.copy(p, f4k / d.name / p.name)
    sets = (BenchSet("lsfd", None, (0,), ""), BenchSet("f4k", r"fish_(\d+)_", (0,), ""))
    table = run_verdicts(str(tmp_path), sets=sets, mode="instant", per_set=20, log=lambda m: None)
    print(table)
    rows = {line.split("(")[0].strip("| "): line for line in table.splitlines() if line.startswith(("| lsfd", "| f4k"))}
    assert sorted(rows) == ["f4k", "lsfd"]
    cells = [c.strip() for c in rows["lsfd"].strip("|").split("|")]
    assert cells[3].endswith("/20)") and "f4k:" in cells[5] and "%" in cells[1]
    assert "lsfd:" in rows["f4k"]


@pytest.mark.slow
def test_verdicts_bench_measures_the_bundled_model(tmp_path):
    import shutil

    from benchmarks.verdicts import run_verdicts

    from conftest import SHARED_DATA, require_shared

    for name in ("nonfish", "f4k"):
        files = sorted(p for p in require_shared(SHARED_DATA / name).rglob("*") if p.is_file())[::25][:12]
        for p in files:
            dest = tmp_path / name / p.relative_to(SHARED_DATA / name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
    table = run_verdicts(str(tmp_path), per_set=12, log=lambda m: None, bundled=True)
    [row] = [line for line in table.splitlines() if line.startswith("| bundled")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "threshold 0.60" in cells[0] and cells[2].endswith("/269)") and cells[3].endswith("/12)") and "f4k:" in cells[5]


@pytest.mark.slow
def test_promise_bench_compares_the_ways_and_the_sets(tmp_path):
    from benchmarks.accuracy import BenchSet
    from benchmarks.promise import WAYS, run_promise

    from conftest import SHARED_DATA, require_shared

    require_shared(SHARED_DATA / "f4k")
    sets = (BenchSet("f4k", r"fish_(\d+)_", (0,), ""),)
    table = run_promise(str(SHARED_DATA), sets=sets, work=str(tmp_path), log=lambda m: None, mode="instant")
    print(table)
    for way, *_ in WAYS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {way} |"))
        precision, kept, thresholds = (c.strip() for c in row.strip("|").split("|")[1:])
        assert re.fullmatch(r"[01]\.\d{3} \(\d+/\d+\)", precision) and re.fullmatch(r"[01]\.\d{3} \(\d+/\d+\)", kept)
        assert float(thresholds.split(" (")[0]) >= 0.6
    assert "| 1 - p(true), held-out: what the product uses |" in table and "Confident mistakes" in table
    assert re.search(r"\| f4k-0 \| instant \| (bf16|fp32) \| \d+ \+ \d+ \| \d+ \|", table)
    # The models are kept in `work`: a second run reuses them.
    assert run_promise(str(SHARED_DATA), sets=sets, work=str(tmp_path), log=lambda m: None, mode="instant") == table


@pytest.mark.slow
def test_recipes_table_has_each_variant_and_the_flip_averaging_rows(tmp_path):
    from benchmarks.accuracy import BenchSet
    from benchmarks.recipes import ENSEMBLES, FLIP, ensemble_rows, run_recipes

    make_image_folder(tmp_path / "tiny", ["red", "green", "blue"], 14)
    sets = (BenchSet("tiny", None, (0,), "three colours"),)  # one split: the accuracy test covers means over several
    variants = {"base": {}, "no class weights": {"train": {"class_weights": False}}}
    table = run_recipes(str(tmp_path), sets=sets, variants=variants, seconds=6, log=lambda m: None)
    print(table)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "recipe" not in line}
    ensembles = [row for label in ENSEMBLES.values() for row in ensemble_rows(label)]
    assert sorted(rows) == sorted(["base", "no class weights", "base, scored from the files", FLIP, *ensembles])
    for line in rows.values():
        val, test, seconds, mean_val = (float(c) for c in line.strip("|").split("|")[1:])
        assert 0 <= val <= 1 and 0 <= test <= 1 and seconds > 0 and mean_val == val
    assert float(rows["base"].split("|")[2]) > 0.5  # colours are easy; chance is 0.33


@pytest.mark.slow
def test_frozen_features_table_has_each_variant_with_scores(tmp_path):
    from benchmarks.accuracy import BenchSet
    from benchmarks.frozen import VARIANTS, run_frozen

    make_image_folder(tmp_path / "tiny", ["red", "green", "blue"], 14)
    table = run_frozen(str(tmp_path), sets=(BenchSet("tiny", None, (0,), "three colours"),), log=lambda m: None)
    print(table)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "features" not in line}
    assert sorted(rows) == sorted(VARIANTS)
    for line in rows.values():
        val, test, mean_val = (float(c) for c in line.strip("|").split("|")[1:])
        assert 0 <= val <= 1 and 0 <= test <= 1 and mean_val == val
    assert float(rows["MobileNetV2 (default)"].split("|")[2]) > 0.5  # colours are easy; chance is 0.33


@pytest.mark.slow
def test_field_bench_prints_both_orders_round_by_round_and_where_each_reaches_all_labels():
    from benchmarks.accuracy import SETS
    from benchmarks.field import run_field

    from conftest import F4K

    root = require_shared(F4K).parent
    table = run_field(str(root), sets=tuple(s for s in SETS if s.name == "f4k"), log=lambda m: None)
    print(table)
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 3
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert int(cells[0][1]) == int(cells[0][3]) == 4 * 3  # both orders start from 3 labelled photos per species
    assert "All-labels score (within 0.005) reached by the queue at" in table and "per track, shots combined" in table
    queue = [float(c[2]) for c in cells if c[2] != "-"]
    random_order = [float(c[4]) for c in cells if c[4] != "-"]
    assert all(0 <= f <= 1 for f in queue + random_order)
    assert queue[-1] > 0.5 and random_order[-1] > 0.5  # 4 species: well above chance once every photo is confirmed


@pytest.mark.slow
def test_the_serve_bench_syncs_every_entry_once_and_prints_its_table():
    from benchmarks.serve import run_serve

    from conftest import LSFD

    require_shared(LSFD)
    table = run_serve(str(LSFD.parent))
    assert "| sync, 10 entries per request | 80 |" in table and "| predict, one photo per request | 96 |" in table
    assert "every entry once: yes (800 stored); refused requests: 0" in table


@pytest.mark.slow
@pytest.mark.browser
def test_the_field_app_bench_prints_the_phone_beside_the_station(monkeypatch):
    import benchmarks.fieldapp as fieldapp

    from conftest import LSFD

    require_shared(LSFD)
    for name, value in (("PHOTOS_TIMED", 3), ("AGREEMENT_PHOTOS", 8), ("PHONE_SIZE", 2), ("TEACH_MODES", ("instant",))):
        monkeypatch.setattr(fieldapp, name, value)
    table = fieldapp.run_fieldapp(str(LSFD.parent))
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| ")}
    agree = next(v for k, v in rows.items() if k.startswith("phone and station give the same species and verdict"))
    assert agree.startswith("10 of 10 photos (8 from the sets, 2 of a phone's size)"), table
    first = float(next(v for k, v in rows.items() if k.startswith("first download")).split()[0])
    update = next(v for k, v in rows.items() if k.startswith("update after teaching on frozen features"))
    sent, whole = float(update.split()[0]), float(update.split()[3])
    assert 0 < sent < whole and 0 < first < 8, table  # an update sends less than the whole package
    assert float(rows["phone / station, small photos"].rstrip("x")) > 0 and "Conv" in table


@pytest.mark.slow
def test_the_loop_bench_teaches_a_round_over_http_and_prints_its_table(tmp_path):
    import shutil

    from benchmarks.loop import run_loop

    from conftest import F4K, LSFD

    require_shared(F4K)
    few = tmp_path / "lsfd-few"  # the first teaching starts from 3 LSFD species, not all 1,800 photos
    for species in sorted(d.name for d in LSFD.iterdir() if d.is_dir())[:3]:
        (few / species).mkdir(parents=True)
        for photo in sorted((LSFD / species).iterdir())[:20]:
            shutil.copy(photo, few / species / photo.name)
    table = run_loop(str(F4K.parent), budget=20, sets=("f4k",), rounds=(3,), start_from=few)
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| f4k")]
    assert [int(r[1]) for r in rows] == [0, 3], table  # the bundled model, then one round of 3 photos per species
    first, taught = rows
    assert float(first[7]) == 0.0 and float(first[9]) > 0.95  # it knows none of the reef species, all of its own
    assert 0 < int(taught[2]) <= 12
    assert taught[6].strip() in ("better", "worse_kept_back", "worse_heldout", "promise", "nothing_shared")
    assert "f4k: new species" in table and "Measured" in table
