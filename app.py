"""Streamlit entry point: declares the pages; every page is a thin script over fishcore.

Page files are named `*_page.py` and given explicit URLs: Streamlit's legacy pages/ discovery,
which a deep link to a fresh server falls back to, then finds no page of that URL and runs this
script, so the navigation below is always the one in force.
"""

from pathlib import Path

import streamlit as st

# A local file: a ":material/...:" page icon makes every page load ask a public font server for the favicon.
ICON = Path(__file__).parent / "assets" / "icon.png"
st.set_page_config(page_title="Fish species classifier", page_icon=str(ICON), layout="wide")

from pages._i18n import language_switch, tr, widget_words  # noqa: E402 (set_page_config must come first)


def page(name: str, title: str, icon: str, **kwargs) -> st.Page:
    return st.Page(f"pages/{name}_page.py", title=title, icon=f":material/{icon}:", url_path=name, **kwargs)


language_switch()
widget_words()
pages = {
    "": [page("home", tr("Home"), "home", default=True)],
    tr("Use"): [
        page("predict", tr("Predict"), "photo_camera"),
        page("catchlog", tr("Catch log"), "list_alt"),
        page("models", tr("Models"), "inventory_2"),
        page("phones", tr("Phones"), "smartphone"),
    ],
    tr("Learn and train"): [
        page("photos", tr("My photos"), "add_photo_alternate"),
        page("data", tr("Data"), "photo_library"),
        page("augment", tr("Augmentation lab"), "science"),
        page("train", tr("Train"), "model_training"),
        page("evaluate", tr("Evaluate"), "analytics"),
        page("compare", tr("Compare"), "leaderboard"),
    ],
}
st.navigation(pages).run()
