import json
import subprocess
import sys
from pathlib import Path

import pytest

from fishcore.store.model_files import read_metrics

from conftest import REPO, class_image, make_image_folder


def run_cli(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "fishcore", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_image_folder(root / "data", ["red", "green", "blue"], per_class=16)
    out = root / "model"
    proc = run_cli(
        "train",
        data,
        "--out",
        out,
        "--image-size",
        "64",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--val-every",
        "3",
        "--budget",
        "30",
        "--quiet",
        "--note",
        "synthetic test model",
    )
    assert "saved" in proc.stdout
    return data, out


def test_train_writes_a_complete_model_folder(trained):
    _data, out = trained
    card = json.loads((out / "card.json").read_text())
    assert card["classes"] == ["blue", "green", "red"] and card["image_size"] == 64
    assert card["backbone_weights_sha256"].startswith("b0353104")
    assert set(card["split"]) >= {"train", "val", "test"} and card["split"]["test"]
    assert card["training"]["seconds"] > 0 and card["dataset"]["fingerprint"] and card["format_version"] == 3
    assert "history" not in card  # metrics.jsonl is the one history
    assert card["config"]["train"]["lr"] == 1e-3 and card["notes"] == ["synthetic test model"]
    assert card["metrics"]["test"]["n"] == len(card["split"]["test"])
    rows = read_metrics(out)
    assert len(rows) == card["training"]["evaluations"] >= 1 and all("val_loss" in r for r in rows)
    # Auto mode records each candidate it compared on validation; each row says which candidate it scored.
    assert card["training"]["mode"] == "auto" and len(card["training"]["candidates"]) >= 1
    assert {r["candidate"] for r in rows} <= {c["name"] for c in card["training"]["candidates"]}
    assert (out / "test_report.json").is_file()


def test_evaluate_json_on_saved_test_split_and_on_all_images(trained, tmp_path, monkeypatch, capsys):
    """The first call is a real process; the rest run main() in-process."""
    data, out = trained
    rep = json.loads(run_cli("evaluate", out, data, "--split", "test", "--json").stdout)
    assert {"accuracy", "macro_precision", "macro_recall", "macro_f1", "classes", "confusion_matrix", "per_class"} <= set(rep)
    card = json.loads((out / "card.json").read_text())
    assert rep["n"] == len(card["split"]["test"]) and rep["macro_f1"] == pytest.approx(card["metrics"]["test"]["macro_f1"])
    everything = json.loads(_cli_here(tmp_path, monkeypatch, capsys, "evaluate", out, data, "--json").stdout)
    assert everything["n"] == 48 and everything["accuracy"] >= 0.7
    text = _cli_here(tmp_path, monkeypatch, capsys, "evaluate", out, data, "--split", "test").stdout
    assert "confusion matrix" in text and "MSE" in text


def test_predict_json_and_text(trained, tmp_path, monkeypatch, capsys):
    _, out = trained
    f = tmp_path / "red fish.png"
    class_image(0, 99, 48).save(f)
    result = json.loads(run_cli("predict", out, f, "--top-k", "2", "--json").stdout)
    assert result[0]["file"].endswith("red fish.png") and len(result[0]["top"]) == 2
    assert result[0]["top"][0]["label"] == "red" and result[0]["verdict"] in ("confident", "uncertain")
    assert "red" in _cli_here(tmp_path, monkeypatch, capsys, "predict", out, f).stdout


def test_augment_writes_views_and_matrices(tmp_path, monkeypatch, capsys):
    f = tmp_path / "x.png"
    class_image(1, 1, 60).save(f)
    args = ("augment", f, "--out", tmp_path / "views", "-n", "3", "--seed", "5", "--rotation", "30")
    done = _cli_here(tmp_path / "home", monkeypatch, capsys, *args)
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "views" / "views.json").read_text())
    assert len(meta) == 3 and len(meta[0]["matrix"]) == 3
    assert all((tmp_path / "views" / m["file"]).is_file() for m in meta)


def test_scan_json(tmp_path):
    data = make_image_folder(tmp_path / "d", ["a", "b"], 2)
    (data / "a" / "bad.jpg").write_bytes(b"")
    out = json.loads(run_cli("scan", data, "--json").stdout)
    assert out["counts"] == {"a": 2, "b": 2} and out["problems"][0]["file"] == "a/bad.jpg"


def test_help_and_a_bad_setting_answer_without_loading_torch():
    """The parser, the config checks and the backbone registry need no torch (7 s to import on 2 cores)."""
    code = (
        "import sys\n"
        "from fishcore.cli import main\n"
        "try:\n"
        "    main(['train', '.', '--out', 'm', '--lr', '-1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'sklearn', 'cv2') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert "--lr" in proc.stderr and "Traceback" not in proc.stderr
    help_text = run_cli("--help").stdout
    assert "train" in help_text and "predict" in help_text


@pytest.mark.parametrize(
    "args, message",
    [
        (["scan", "/no/such/folder"], "not found"),
        (["train", "/no/such/folder", "--out", "/tmp/x"], "not found"),
        (["evaluate", "/no/such/model", "."], "model folder not found"),
        (["predict", "default", "/no/such.jpg"], "file not found"),
        (["predict", "tests", "x.jpg"], "not a fishcore model"),
        (["augment", "README.md", "--out", "/tmp/aug", "--rotation", "10"], "not an image"),
        (["augment", "x.png", "--out", "/tmp/aug", "--rotation", "1000"], "--rotation 1000.0: must be in [0, 180]"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args, message, tmp_path, capsys, monkeypatch):
    # In this process (a subprocess spends most of its 10 s importing torch); the tests above and below run
    # the real `python -m fishcore` and check its exit codes and output.
    monkeypatch.chdir(REPO)
    if args[0] == "augment" and args[1] == "x.png":
        class_image(0, 0, 40).save(tmp_path / "x.png")
        args = ["augment", tmp_path / "x.png", *args[2:]]
    code, err = _main(capsys, *args)
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err


def _main(capsys, *args) -> tuple[int, str]:
    """fishcore.cli.main in this process: (exit code, stderr). An uncaught exception fails the test."""
    from fishcore.cli import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def test_training_needs_two_classes(tmp_path, capsys):
    data = make_image_folder(tmp_path / "d", ["only"], 5)
    code, err = _main(capsys, "train", data, "--out", tmp_path / "m", "--quiet")
    assert code == 2 and "at least 2" in err
    assert not Path(tmp_path / "m").exists()


# Every `train` setting with values that are out of range or of the wrong type. Free-text settings
# (the output folder, notes, a citation) have no wrong value; folder settings are wrong when missing.
BAD_TRAIN_VALUES = {
    "--out": None,
    "--backbone": ["vgg99"],
    "--freeze-until": ["99", "-1", "x"],
    "--head": ["mlp"],
    "--head-width": ["0", "1.5"],
    "--dropout": ["1", "-0.1", "x"],
    "--image-size": ["16", "5000", "x"],
    "--epochs": ["0", "x", "2.5"],
    "--batch-size": ["0", "x"],
    "--lr": ["0", "-1", "nan", "x"],
    "--weight-decay": ["-1", "2", "x"],
    "--lr-schedule": ["cosine"],
    "--label-smoothing": ["1", "-0.1", "x"],
    "--val-every": ["-1", "x"],
    "--patience": ["0", "x"],
    "--held-out-folds": ["1", "21", "-1", "x"],
    "--seed": ["-1", "x"],
    "--mode": ["turbo"],
    "--views": ["-1", "65", "x"],
    "--precision": ["fp8"],
    "--budget": ["5", "x", "inf"],
    "--cache-dir": None,
    "--val-fraction": ["1", "-0.1", "x"],
    "--test-fraction": ["1.5", "x"],
    "--test-dir": ["/no/such/folder"],
    "--duplicate-distance": ["65", "-1", "x"],
    "--min-side": ["0", "x"],
    "--group-pattern": ["(", "no-group"],
    "--device": ["tpu", "cuda:x"],
    "--citation": None,
    "--note": None,
    "--scale": [["1.2", "0.8"], ["0.1", "1"], ["x", "1"]],
    "--rotation": ["500", "-1", "x"],
    "--shear": ["90", "x"],
    "--translate": ["0.9", "x"],
    "--brightness": ["2", "x"],
    "--contrast": ["-1", "x"],
    "--saturation": ["1.5", "x"],
    "--hue": ["0.9", "x"],
}


def _train_flags() -> set[str]:
    from fishcore.cli import build_parser

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    return {
        a.option_strings[0]
        for a in train._actions
        if a.option_strings and a.nargs != 0 and not a.option_strings[0].startswith("--no-") and a.dest != "help"
    }


def test_every_train_setting_is_in_the_bad_value_table():
    assert _train_flags() == set(BAD_TRAIN_VALUES), "a train flag was added or removed: list its wrong values above"


@pytest.mark.parametrize("flag, value", [(f, v) for f, values in BAD_TRAIN_VALUES.items() if values for v in values], ids=str)
def test_a_bad_train_setting_is_one_error_line_and_exit_2(flag, value, tiny_dataset, tmp_path, capsys):
    from fishcore.cli import main

    values = value if isinstance(value, list) else [value]
    try:
        code = main(["train", str(tiny_dataset), "--out", str(tmp_path / "m"), "--quiet", flag, *values])
    except SystemExit as exc:  # argparse's type and choice errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert flag in lines[0] or "not found" in lines[0], lines[0]
    assert not (tmp_path / "m").exists()


def _cli_in(home: Path, *args):
    import os

    env = {**os.environ, "FISHCORE_HOME": str(home), "FISHCORE_DATASETS_DIR": str(home / "datasets")}
    return subprocess.run(
        [sys.executable, "-m", "fishcore", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )


def _cli_here(home: Path, monkeypatch, capsys, *args):
    """The CLI's main() in this process (seconds cheaper than a process per call); the same result fields."""
    from types import SimpleNamespace

    from fishcore.cli import main

    monkeypatch.setenv("FISHCORE_HOME", str(home))
    monkeypatch.setenv("FISHCORE_DATASETS_DIR", str(home / "datasets"))
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def test_import_previews_then_writes_into_the_managed_dataset_only(tmp_path, monkeypatch, capsys):
    """The first call is a real process; the rest run main() in-process."""
    import zipfile

    src = make_image_folder(tmp_path / "src", ["kakap", "tongkol"], per_class=5)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(src.rglob("*.png")):
            z.write(f, f.relative_to(tmp_path).as_posix())  # src/kakap/img_000.png: the top folder is dropped
        z.writestr("src/kakap/../../../escape.png", b"x")
    home = tmp_path / "home"
    dry = _cli_in(home, "import", archive, "reef", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing written: 10 photos" in dry.stdout and "'..'" in dry.stdout
    assert not (home / "datasets" / "reef").exists()

    def cli(home, *args):
        return _cli_here(home, monkeypatch, capsys, *args)

    done = cli(home, "import", archive, "reef")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (home / "datasets" / "reef").iterdir()) == ["kakap", "tongkol"]
    assert "warning: Few photos in kakap (5)" in done.stdout
    again = cli(home, "import", archive, "reef")
    assert "0 photos to add" in again.stdout and "already there" in again.stdout
    loose = cli(home, "import", src / "kakap" / "img_000.png", "reef")
    assert loose.returncode == 2 and loose.stderr.strip() == "error: loose photos need --class NAME (the species they show)"
    cam = class_image(3, seed=99, size=48)
    cam.save(tmp_path / "cam.jpg")
    added = cli(home, "import", tmp_path / "cam.jpg", "reef", "--class", "kembung")
    assert added.returncode == 0 and (home / "datasets" / "reef" / "kembung" / "cam.jpg").is_file()
    listing = cli(home, "datasets")
    assert "reef: 11 photos in 3 classes" in listing.stdout
    bad = cli(home, "import", archive, "../outside")
    assert bad.returncode == 2 and bad.stderr.startswith("error: the dataset name") and "Traceback" not in bad.stderr
    assert not (tmp_path / "escape.png").exists() and not (home / "outside").exists()


def test_export_writes_onnx_with_labels_and_a_zip_that_imports(trained, tmp_path, monkeypatch, capsys):
    """The first call is a real process; the rest run main() in-process."""
    _, trained = trained
    home = tmp_path / "home"
    proc = _cli_in(home, "export", trained, "--format", "onnx", "--out", tmp_path / "fish.onnx")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fish.onnx").stat().st_size > 1000
    assert (tmp_path / "fish.labels.txt").read_text().split() == ["blue", "green", "red"]

    def cli(home, *args):
        return _cli_here(home, monkeypatch, capsys, *args)

    proc = cli(home, "export", trained, "--format", "zip", "--out", tmp_path / "fish.zip")
    assert proc.returncode == 0, proc.stderr
    proc = cli(home, "import-model", tmp_path / "fish.zip", "--name", "shared-fish")
    assert proc.returncode == 0 and (home / "models" / "shared-fish" / "card.json").is_file()
    missing = cli(home, "export", tmp_path / "nope", "--format", "zip", "--out", tmp_path / "x.zip")
    assert missing.returncode == 2 and "model folder not found" in missing.stderr


# Settings whose valid non-default value cannot be derived from their Rule alone (free text, a folder).
OTHER_TEXT = {"group_pattern": r"fish_(\d+)_", "test_dir": "some/test/folder"}


def _other_value(setting):
    """A valid value of a setting other than its default, as (flag arguments, the value the config should hold)."""
    from fishcore.cli.flags import flag_of

    rule, default, flag = setting.rule, setting.default, flag_of(setting.name)
    if rule.off_flag:
        return [flag], False
    if rule.kind is bool:
        return [f"--no-{flag[2:]}" if default else flag], not default
    if rule.choices:
        other = next(c for c in rule.choices if c != default)
        return [flag, other], other
    if rule.kind is str:
        return [flag, OTHER_TEXT[setting.name]], OTHER_TEXT[setting.name]
    if rule.kind is int:
        value = 10 if default is None else default + 1 if rule.hi is None or default + 1 <= rule.hi else default - 1
        return [flag, str(value)], value
    value = (rule.lo + rule.hi) / 2 if default != (rule.lo + rule.hi) / 2 else rule.lo + (rule.hi - rule.lo) / 4
    return [flag, repr(value)], value


def test_every_generated_train_flag_takes_a_valid_value_other_than_its_default():
    """Each setting's flag is typed by its Rule (--freeze-until 10 is a number, --group-pattern a text), and the
    value given is the one in the config the command builds; a setting in two configs (seed) sets both."""
    from fishcore.cli import build_parser
    from fishcore.cli.flags import configs_from_flags
    from fishcore.training.run import TRAIN_SETTINGS

    for name, setting in TRAIN_SETTINGS.items():
        args, expected = _other_value(setting)
        assert expected != setting.default, name
        parsed = build_parser().parse_args(["train", "DATA", "--out", "m", *args])
        configs = dict(zip(("data", "model", "train"), configs_from_flags(parsed), strict=True))
        holders = [cfg for cfg in configs.values() if name in type(cfg).__dataclass_fields__]
        assert holders, name
        for cfg in holders:
            got = getattr(cfg, name)
            assert got == pytest.approx(expected) if isinstance(expected, float) else got == expected, (name, args, got)
        others = {n: s for n, s in TRAIN_SETTINGS.items() if n != name}  # nothing else moved
        for other, s in others.items():
            for cfg in configs.values():
                if other in type(cfg).__dataclass_fields__:
                    assert getattr(cfg, other) == s.default, (name, other)


def test_train_help_names_no_none_default_and_no_bare_not():
    from fishcore.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    text = sub.format_help()
    assert "default: None" not in text and "not: " not in text
    assert "--freeze-until N" in text and "--group-pattern GROUP_PATTERN" in text


def _documented_commands() -> list[tuple[str, str]]:
    """Every fishcore command line the README and docs/ show: (file, the arguments after 'fishcore').

    Code spans and code-block lines that start with `fishcore`, `./run.sh fishcore` or `python -m fishcore`; a
    trailing '# comment' or '; more shell' is cut, an optional part [X] is read as X, a choice a|b|c as each.
    """
    import re
    import shlex

    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    start = re.compile(r"^(?:\./run\.sh |python -m )?fishcore (?P<args>.*)$")
    out = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        candidates = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", text)]
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            candidates += block.splitlines()
        for candidate in candidates:
            m = start.match(candidate.strip())
            if not m or "..." in m["args"]:
                continue
            args = re.split(r"\s+#|;", m["args"])[0].strip()
            args = re.sub(r"\[([^\]]*)\]", r"\1", args)
            words = shlex.split(args)
            choices = [w.split("|") for w in words]
            for k in range(max(len(c) for c in choices) if choices else 1):
                out.append((path.name, [c[min(k, len(c) - 1)] for c in choices]))
    return out


def test_every_command_line_in_the_readme_and_docs_parses():
    from fishcore.cli import build_parser

    found = _documented_commands()
    commands = {args[0] for _, args in found if args}
    assert len(found) >= 20 and {"teach", "health", "train", "predict", "log"} <= commands
    bad = []
    for name, args in found:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            bad.append(f"{name}: fishcore {' '.join(args)}")
    assert not bad, "documented command lines that today's CLI refuses:\n" + "\n".join(bad)


def test_health_lists_a_photo_filed_under_the_wrong_species_as_json(tmp_path, monkeypatch, capsys):
    root = make_image_folder(tmp_path / "reef", ["red", "green", "blue"], 14, size=64)
    wrong = sorted((root / "red").iterdir())[0]
    wrong.rename(root / "green" / ("odd-" + wrong.name))
    monkeypatch.setenv("FISHCORE_CACHE_DIR", str(tmp_path / "cache"))
    done = _cli_here(tmp_path / "home", monkeypatch, capsys, "health", root, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    flagged = [f for f in report["flags"] if f["kind"] == "mislabel"]
    assert any(f["path"] == f"green/odd-{wrong.name}" and f["suggested"] == "red" for f in flagged), report
    text = _cli_here(tmp_path / "home", monkeypatch, capsys, "health", root, "--quiet").stdout
    assert f"green/odd-{wrong.name}: possibly the wrong species" in text
