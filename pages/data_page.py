"""Data: what a dataset folder holds, per class, with thumbnails and the files that cannot be used."""

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.data.images import load_image
from fishcore.data.thumbnails import thumbnail
from fishcore.errors import FishcoreError
from pages._i18n import error_text, num, tr
from pages._shared import dataset_input, scan_dataset, workspace

PAGE_SIZE = 24
COLUMNS = 6


def problems_table(problems) -> pd.DataFrame:
    return pd.DataFrame([{tr("file"): p.path, tr("problem"): p.reason} for p in problems])


st.title(tr("Data"))
root = dataset_input("data")
if not root:
    st.info(tr("Type the path of a dataset folder: one sub-folder per species, photos inside (jpg, png, webp, bmp)."))
    st.stop()
try:
    result = scan_dataset(root)
except FishcoreError as exc:
    st.info(tr("{error}. Check the path; a dataset is a folder with one sub-folder of photos per species.", error=exc))
    st.stop()
if not result.items:
    st.info(tr("No usable photos in {folder} yet. Make one sub-folder per species and put its photos inside.", folder=root))
    if result.problems:
        st.dataframe(problems_table(result.problems), hide_index=True)
    st.stop()

counts = pd.DataFrame({"species": list(result.counts), "images": list(result.counts.values())})
c1, c2, c3 = st.columns(3)
c1.metric(tr("Species"), num(len(result.classes)))
c2.metric(tr("Usable photos"), num(len(result.items)))
c3.metric(tr("Unusable files"), num(len(result.problems)))
st.altair_chart(
    alt.Chart(counts)
    .mark_bar()
    .encode(
        x=alt.X("images:Q", title=tr("photos")),
        y=alt.Y("species:N", sort="-x", title=None),
        tooltip=[alt.Tooltip("species", title=tr("species")), alt.Tooltip("images", title=tr("photos"))],
    ),
    width="stretch",
)

if result.problems:
    with st.expander(
        tr("{n} file(s) that cannot be used, and why", n=num(len(result.problems))), expanded=len(result.problems) < 20
    ):
        st.dataframe(problems_table(result.problems), hide_index=True, width="stretch")


@st.dialog(tr("Photo"), width="large")
def show_photo(path: Path, width: int, height: int) -> None:
    try:
        st.image(load_image(path), width="stretch")
    except FishcoreError as exc:
        st.error(error_text(exc))
    st.caption(
        tr(
            "{name} · {width}x{height} px · {kb} KB",
            name=path.name,
            width=width,
            height=height,
            kb=num(path.stat().st_size / 1024),
        )
    )


st.subheader(tr("Photos"))
label = st.selectbox(tr("Species"), result.classes, key="data_species")
items = [item for item in result.items if item.label == label]
pages = max(1, -(-len(items) // PAGE_SIZE))
page = st.number_input(tr("Page (of {pages})", pages=pages), 1, pages, 1, key=f"data_page_{label}")
thumbs_dir = workspace().thumbnails
chunk = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
for row in range(0, len(chunk), COLUMNS):
    for col, item in zip(st.columns(COLUMNS), chunk[row : row + COLUMNS], strict=False):
        path = result.root / item.path
        try:
            col.image(str(thumbnail(path, 160, thumbs_dir)), width="stretch")
        except (FishcoreError, OSError) as exc:
            col.warning(f"{item.path}: {exc}")
            continue
        if col.button(Path(item.path).name[:18], key=f"zoom_{item.path}", help=tr("Open the photo"), width="stretch"):
            show_photo(path, item.width, item.height)
