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


def page(name: str, title: str, icon: str, **kwargs) -> st.Page:
    return st.Page(f"pages/{name}_page.py", title=title, icon=f":material/{icon}:", url_path=name, **kwargs)


pages = {
    "": [page("home", "Home", "home", default=True)],
    "Use": [page("predict", "Predict", "photo_camera"), page("models", "Models", "inventory_2")],
    "Learn and train": [
        page("photos", "My photos", "add_photo_alternate"),
        page("data", "Data", "photo_library"),
        page("augment", "Augmentation lab", "science"),
        page("train", "Train", "model_training"),
        page("evaluate", "Evaluate", "analytics"),
        page("compare", "Compare", "leaderboard"),
    ],
}
st.navigation(pages).run()
