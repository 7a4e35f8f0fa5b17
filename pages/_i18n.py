"""The app's languages: English (the source text) and Bahasa Indonesia, from assets/locales/<code>.json.

Pages write their text in English inside tr("..."); tr looks it up in the catalogue of the session's
language and fills in {named} values. The language comes from the URL (?lang=id), else what the session
chose, else English; the sidebar switch writes both. tests/test_i18n.py fails when a tr() text of a
page has no translation, or when a translated page passes bare text to Streamlit.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path

import streamlit as st

from pages._state import state

LANGUAGES = {"en": "English", "id": "Bahasa Indonesia"}
SOURCE = "en"
LOCALES = Path(__file__).resolve().parent.parent / "assets" / "locales"


@cache
def catalogue(code: str) -> dict[str, str]:
    """English text -> this language's text (empty for English)."""
    if code == SOURCE:
        return {}
    return json.loads((LOCALES / f"{code}.json").read_text(encoding="utf-8"))


def language() -> str:
    """The session's language code: ?lang= in the URL wins, then the session's choice, then English."""
    asked = st.query_params.get("lang")
    if asked in LANGUAGES:
        state().lang = asked
    return (state().lang or SOURCE)


def tr(text: str, **values) -> str:
    """``text`` in the session's language, with {named} values filled in (numbers via num()/pct())."""
    translated = catalogue(language()).get(text, text)
    return translated.format(**values) if values else translated


def num(value: float, digits: int = 0) -> str:
    """A number as the language writes it: 1,234.5 in English, 1.234,5 in Indonesian."""
    text = f"{value:,.{digits}f}"
    if language() == "id":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def pct(value: float, digits: int = 0) -> str:
    """A share as a percentage: 98.5% in English, 98,5% in Indonesian."""
    return f"{num(value * 100, digits)}%"


MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "id": ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"],
}


def when(iso: str) -> str:
    """An ISO timestamp as the language writes a date and time: 29 Nov 2026, 11:35 / 29 Nov 2026, 11.35.

    Shown in the timestamp's own offset (the model card records UTC); text that is no timestamp comes back as it is.
    """
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    code = language()
    clock = f"{moment:%H:%M}" if code == "en" else f"{moment:%H.%M}"
    zone = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    return f"{moment.day} {MONTHS[code][moment.month - 1]} {moment.year}, {clock}{zone}"


# A lead in the session's language for each kind of error the library raises (its ``code``); the library's own
# English detail follows it, so nothing it says is lost.
ERROR_KINDS = {
    "error": "Something went wrong",
    "bad_setting": "A setting is not right",
    "bad_dataset": "The dataset cannot be used like this",
    "bad_image": "This photo cannot be used",
    "weights": "The pretrained weights are missing or not the right file",
    "bad_model": "This model cannot be used",
    "bad_archive": "This archive cannot be used",
    "path_not_allowed": "That folder may not be opened here",
}


def error_text(exc: BaseException) -> str:
    """An error for the screen: its English text as it is, or in another language a lead for its kind, then it."""
    if language() == SOURCE:
        return str(exc)
    return f"{tr(ERROR_KINDS.get(getattr(exc, 'code', 'error'), ERROR_KINDS['error']))}: {exc}"


# Words Streamlit's own widgets show, which its API cannot change: widget_words() swaps them by CSS.
STREAMLIT_WORDS = {
    # The camera's shutter button, before a photo (its only content is the text) and after (an icon and the text).
    "[data-testid='stCameraInputButton']:not(:has(span))": "Take Photo",
    "[data-testid='stCameraInputButton'] > span": "Clear photo",
    "[data-testid='stFileUploaderDropzone'] [data-testid='stBaseButton-secondary'] p": "Upload",
}


def widget_words() -> None:
    """Show Streamlit's built-in widget words in the session's language (no-op in English).

    The original text is kept in the page (screen readers and tests still find it) at font size 0; the
    translation is drawn after it. Tied to Streamlit's test ids (Streamlit is pinned in requirements.txt); the
    phone browser test checks the words drawn.
    """
    if language() == SOURCE:
        return
    rules = []
    for selector, english in STREAMLIT_WORDS.items():
        words = json.dumps(tr(english), ensure_ascii=True)  # a valid CSS string: quotes and non-ASCII escaped
        rules.append(f"{selector} {{font-size: 0}} {selector}::after {{content: {words}; font-size: 1rem}}")
    rules.append("[data-testid='stCameraInputButton'] > span svg {width: 0.75rem; height: 0.75rem; margin-right: 0.4rem}")
    st.html("<style>" + "\n".join(rules) + "</style>")


def _chosen() -> None:
    state().lang = st.session_state["lang_choice"]
    st.query_params["lang"] = state().lang  # a link or a refresh keeps the language


def language_switch() -> None:
    """The sidebar's language choice, showing the language in force (from the URL or the session)."""
    st.session_state["lang_choice"] = language()
    st.sidebar.selectbox("Language / Bahasa", list(LANGUAGES), format_func=LANGUAGES.get, key="lang_choice", on_change=_chosen)
