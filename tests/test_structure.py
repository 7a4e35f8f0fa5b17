"""The codebase's shape: imports go one way, the library never imports Streamlit, and every module path the
README, the docs or a page names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

# fishcore's layers, lowest first: a module may import its own layer and the ones below, never one above.
LAYERS = [
    {"fishcore.errors", "fishcore.settings", "fishcore.events"},
    {"fishcore.config"},
    {"fishcore.models"},
    {"fishcore.runtime", "fishcore.data"},
    {"fishcore.store"},
    {"fishcore.inference"},
    {"fishcore.training"},
    {"fishcore.server"},
    {"fishcore.cli", "fishcore.__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count: they run too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _graph(package: str) -> dict[str, set[str]]:
    files = sorted((REPO / package).rglob("*.py"))
    names = {_module_name(f) for f in files}
    return {_module_name(f): {m for m in _imports(f) if m in names and m != _module_name(f)} for f in files}


def _layer(module: str) -> int:
    best = max((prefix for layer in LAYERS for prefix in layer if module == prefix or module.startswith(prefix + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    return next((c for node in sorted(graph) if node not in state and (c := visit(node))), None)


@pytest.mark.parametrize("package", ["fishcore", "benchmarks"])
def test_imports_have_no_cycle(package):
    graph = _graph(package)
    # Imports inside functions count as edges, so no cycle hides behind a late import.
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_fishcore_imports_go_down_the_layers_and_never_reach_streamlit():
    for module, deps in _graph("fishcore").items():
        for dep in deps:
            assert _layer(dep) <= _layer(module), f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})"
    for path in (REPO / "fishcore").rglob("*.py"):
        assert not any(m.split(".")[0] == "streamlit" for m in _imports(path)), f"{path} imports streamlit"


def test_the_field_server_starts_without_torch_and_imports_it_at_its_first_prediction():
    """A station that only syncs phones never pays torch's seconds and memory; predicting loads it then."""
    import subprocess
    import sys

    code = (
        "import sys; from fishcore.server.app import create_app; from fishcore.server.station import Station; "
        "s = Station(); create_app(s); print('torch' in sys.modules); s.predictor(); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"], done.stdout


def test_no_module_imports_a_private_name_of_another():
    for path in [*(REPO / "fishcore").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py"), *(REPO / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("fishcore", "benchmarks"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(REPO)} imports {private} from {node.module}"


# `fishcore.x.y`, `fishcore/x/y.py`, `python -m fishcore.x`: any module path written in prose or in a page's text.
MODULE_PATH = re.compile(r"(?<![\w./-])((?:fishcore|benchmarks|pages|tests)(?:[./][A-Za-z_]\w*)+(?:\.py)?)")


def _named_paths(text: str) -> set[str]:
    return {m.rstrip(".") for m in MODULE_PATH.findall(text)}


def _exists(name: str) -> bool:
    """A module, a package, a file, or an attribute of a module (fishcore.config.AUGMENT_SPEC)."""
    import importlib

    if "/" in name:
        return (REPO / name).exists()
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            module = importlib.import_module(".".join(parts[:cut]))
            obj = module
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")), "assets/README.md"]
PAGES = [*sorted(str(p.relative_to(REPO)) for p in (REPO / "pages").glob("*.py")), "assets/locales/id.json"]


@pytest.mark.parametrize("rel", DOCUMENTS + PAGES)
def test_every_module_path_named_in_the_docs_and_pages_exists(rel):
    text = (REPO / rel).read_text(encoding="utf-8")
    missing = sorted(name for name in _named_paths(text) if not _exists(name))
    assert not missing, f"{rel} names module paths that do not exist: {missing}"


def test_the_module_path_check_catches_a_stale_name():
    stale = "the views come from `fishcore.augment.build_transforms`; the worker is `python -m fishcore.jobs`"
    assert {n for n in _named_paths(stale) if not _exists(n)} == {"fishcore.augment.build_transforms", "fishcore.jobs"}
    fresh = "`fishcore.data.augment.build_transforms`, `fishcore/training/jobs.py`, `fishcore.config.AUGMENT_SPEC`"
    assert all(_exists(n) for n in _named_paths(fresh))


def test_the_version_is_the_one_pyproject_declares():
    import tomllib

    import fishcore

    assert fishcore.__version__ == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_environment_variables_documented_are_the_ones_the_code_reads():
    """docs/architecture.md's table of environment variables names exactly those fishcore.settings reads (and the two
    the tests read), and every FISHCORE_ name in the code is one of them."""
    import re

    from fishcore.settings import ENVIRONMENT

    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(FISHCORE_[A-Z_]+)` \|", text, flags=re.M))
    tests_only = {"FISHCORE_REQUIRE_POSTGRES", "FISHCORE_REQUIRE_BROWSER"}
    documented, known = table - tests_only, set(ENVIRONMENT)
    assert documented == known, (sorted(documented - known), sorted(known - documented))
    read = set()
    for path in [*(REPO / "fishcore").rglob("*.py"), *(REPO / "pages").glob("*.py"), REPO / "app.py", REPO / "run.sh"]:
        read |= set(re.findall(r"FISHCORE_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    assert read <= table, sorted(read - table)


def test_the_wire_models_and_the_catch_logs_records_name_the_same_fields():
    """An entry crosses the wire as EntryIn/AnswerIn/WordIn and is kept as DeviceEntry/Answer/Word, then read back as
    Entry and exported as CSV: a field added or renamed on one side and not the other fails here, not at a landing site."""
    from dataclasses import fields

    from fishcore.server import schemas
    from fishcore.store.catchlog import Answer, Entry
    from fishcore.store.catchlog.summaries import CSV_COLUMNS
    from fishcore.store.catchlog.sync import DeviceEntry, Word

    def names(cls):
        return [f.name for f in fields(cls)]

    assert list(schemas.AnswerIn.model_fields) == names(Answer)  # the sync route builds Answer(**answer) by name
    assert list(schemas.WordIn.model_fields) == names(Word)
    assert set(schemas.EntryIn.model_fields) == set(names(DeviceEntry)) - {"session"}  # the session is the device's name
    # Everything an answer and an entry carry is read back (Entry), and the CSV's columns are Entry's own names.
    read_back = set(names(Entry))
    assert set(names(Answer)) - {"top", "candidates"} <= read_back and {"top", "candidates"} <= read_back
    assert set(CSV_COLUMNS) <= read_back, set(CSV_COLUMNS) - read_back
    # The limits the server declares are the catch log's (one definition, checks.py).
    from fishcore.store.catchlog import checks

    assert schemas.EntryIn.model_fields["place"].metadata[0].max_length == checks.PLACE_MAX
    assert schemas.EntryIn.model_fields["count"].metadata[-1].le == checks.COUNT_MAX
