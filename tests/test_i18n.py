"""Languages: every text of a translated page has its Bahasa Indonesia entry, and no such page shows bare text."""

import ast
import json
import re
import string

import pytest

from fishcore.inference.openset import REASON_WORDS, VERDICT_WORDS

from conftest import REPO

# Every page of the app, the navigation, and the widgets the pages share.
PAGE_FILES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pages").glob("*_page.py"))
TRANSLATED = ["app.py", "pages/_shared.py", "pages/_catch.py", *PAGE_FILES]
# Streamlit calls whose first argument, label= or help= the user reads.
SHOWN = {
    "title", "header", "subheader", "write", "markdown", "caption", "info", "warning", "error", "success", "button",
    "toggle", "checkbox", "text_input", "number_input", "selectbox", "select_slider", "slider", "radio", "expander",
    "metric", "download_button", "camera_input", "file_uploader", "progress", "popover", "tabs",
}  # fmt: skip
CATALOGUE = json.loads((REPO / "assets" / "locales" / "id.json").read_text(encoding="utf-8"))


def _texts(node: ast.AST) -> list[str]:
    """The literal text of every tr("...") call in a syntax tree."""
    out = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "tr" and call.args:
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                out.append(first.value)
    return out


def _word_tables() -> list[str]:
    """Texts the pages pass to tr() through a table: the pages' own word tables (phases, outcomes, choices,
    columns), verdict reasons, the augmentation settings' labels and the comparison's rows."""
    from fishcore.config import AUGMENT_SPEC
    from fishcore.inference.explain import CAPTION
    from fishcore.training.compare import recipes
    from fishcore.training.run import TRAIN_SETTINGS
    from pages._i18n import ERROR_KINDS, STREAMLIT_WORDS

    texts = [*REASON_WORDS.values(), *VERDICT_WORDS.values(), CAPTION, *STREAMLIT_WORDS.values(), *ERROR_KINDS.values()]
    texts += [t for p in AUGMENT_SPEC for t in (p.label, p.help)]
    texts += [t for s in TRAIN_SETTINGS.values() if s.rule.label for t in (s.rule.label, s.rule.help)]  # the Train page's
    texts += [t for r in recipes() for t in (r.name, r.what)]
    for rel in TRANSLATED:  # module-level dicts whose values are all text
        for node in ast.parse((REPO / rel).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and node.value.values:
                values = node.value.values
                if all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values):
                    texts += [v.value for v in values]
    states = ["starting", "running", "stopping", "finished", "stopped", "failed"]
    return [t for t in texts if t] + ["confident", "not sure", "not a fish", *states]


def all_texts() -> list[str]:
    texts = []
    for rel in TRANSLATED:
        texts += _texts(ast.parse((REPO / rel).read_text(encoding="utf-8")))
    return sorted(set(texts + _word_tables()))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_has_its_indonesian_translation_with_the_same_placeholders():
    missing = [t for t in all_texts() if t not in CATALOGUE]
    assert not missing, f"{len(missing)} texts without a Bahasa Indonesia entry in assets/locales/id.json: {missing[:5]}"
    for english, indonesian in CATALOGUE.items():
        assert indonesian.strip(), english
        assert _fields(english) == _fields(indonesian), f"placeholders differ: {english!r} -> {indonesian!r}"


def test_the_catalogue_holds_no_stale_entries():
    stale = sorted(set(CATALOGUE) - set(all_texts()))
    assert not stale, f"entries no page uses any more: {stale[:5]}"


def bare_texts(tree: ast.AST) -> list[str]:
    """Text shown through Streamlit without tr(): string literals and the fixed parts of f-strings."""
    bare = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in SHOWN):
            continue
        shown = call.args[:1] + [k.value for k in call.keywords if k.arg in ("label", "help", "text")]
        for arg in shown:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                fixed = arg.value
            elif isinstance(arg, ast.JoinedStr):
                fixed = " ".join(v.value for v in arg.values if isinstance(v, ast.Constant))
            else:
                continue
            if re.search(r"[A-Za-z]{2}", re.sub(r":material/\w+:", "", fixed)):
                bare.append(f"line {call.lineno}: {ast.unparse(arg)[:60]}")
    return bare


def test_the_bare_text_check_catches_what_it_should():
    caught = bare_texts(
        ast.parse('st.title("Train")\nc.button(f"Use {x} now", help="why")\nst.info(tr("Fine"))\nst.write(f"{a}: {b}")')
    )
    assert [c.split(":")[0] for c in caught] == ["line 1", "line 2", "line 2"]


@pytest.mark.parametrize("rel", TRANSLATED)
def test_translated_pages_pass_no_bare_text_to_streamlit(rel):
    bare = bare_texts(ast.parse((REPO / rel).read_text(encoding="utf-8")))
    assert not bare, f"{rel} shows untranslated text: {bare}"


def test_numbers_percentages_and_dates_follow_the_language(monkeypatch):
    import streamlit as st

    from pages import _i18n

    monkeypatch.setattr(_i18n, "language", lambda: "id")
    assert _i18n.num(1234.5, 1) == "1.234,5" and _i18n.pct(0.985, 1) == "98,5%"
    assert _i18n.tr("Not sure") == CATALOGUE["Not sure"]
    assert _i18n.when("2026-05-04T09:05:00+00:00") == "4 Mei 2026, 09.05 UTC"
    monkeypatch.setattr(_i18n, "language", lambda: "en")
    assert _i18n.num(1234.5, 1) == "1,234.5" and _i18n.pct(0.985, 1) == "98.5%"
    assert _i18n.tr("{n} photos together:", n=3) == "3 photos together:"
    assert _i18n.when("2026-05-04T09:05:00+00:00") == "4 May 2026, 09:05 UTC"
    assert _i18n.when("not a date") == "not a date"
    assert st is not None


def test_library_errors_get_a_lead_in_the_language_and_keep_their_detail(monkeypatch):
    from fishcore import errors
    from pages import _i18n

    kinds = {c.code for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.FishcoreError)}
    assert kinds <= set(_i18n.ERROR_KINDS)  # every kind of error the library raises has its lead
    exc = errors.ImageError("truncated image file")
    monkeypatch.setattr(_i18n, "language", lambda: "en")
    assert _i18n.error_text(exc) == "truncated image file"
    monkeypatch.setattr(_i18n, "language", lambda: "id")
    assert _i18n.error_text(exc) == CATALOGUE["This photo cannot be used"] + ": truncated image file"
    assert _i18n.error_text(OSError("disk full")).endswith(": disk full")
