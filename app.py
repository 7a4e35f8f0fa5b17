"""Streamlit entry point: declares the pages; every page is a thin script over fishcore."""

import streamlit as st

st.set_page_config(page_title="Fish species classifier", page_icon="🐟", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]
st.navigation(pages).run()
