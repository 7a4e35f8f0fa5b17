"""Augmentation lab: the paper's transforms, live, from the same factory training uses."""

import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from fishcore.config import AUGMENT_SPEC, PAPER_AUGMENT, AugmentConfig
from fishcore.data.augment import preview
from fishcore.data.images import load_image
from fishcore.errors import FishcoreError
from fishcore.store.samples import sample_set
from pages._i18n import error_text, num, tr
from pages._shared import SAMPLE_SET_WORDS, dataset_input, scan_dataset
from pages._state import state

SOURCES = {"dataset": "From the dataset", "upload": "Upload", "camera": "Camera"}

st.title(tr("Augmentation lab"))
st.caption(
    tr(
        "Each view below is made by `fishcore.data.augment.build_transforms(cfg, train=True)`, the very function the "
        "training loop uses, so what you see is what the model is trained on. The settings you choose here are "
        "the ones the Train page uses."
    )
)

source = st.radio(tr("Photo"), list(SOURCES), horizontal=True, key="aug_source", format_func=lambda s: tr(SOURCES[s]))
image = None
try:
    if source == "dataset":
        root = dataset_input("aug")
        if not root or not Path(root).is_dir():
            # No dataset here (a fresh clone): the shipped sample photos, so the lab always has something to show.
            root = str(sample_set("egu"))
            st.caption(
                tr(
                    "No dataset folder found, so these are the sample photos shipped with fishcore: {source}.",
                    source=tr(SAMPLE_SET_WORDS["egu"]),
                )
            )
        if root:
            result = scan_dataset(root)
            if result.items:
                names = [item.path for item in result.items]
                if "aug_pick" not in st.session_state or st.session_state["aug_pick"] not in names:
                    st.session_state["aug_pick"] = names[0]
                c1, c2 = st.columns([4, 1])
                pick = c1.selectbox(tr("Photo"), names, key="aug_pick")
                if c2.button(tr("Random photo"), width="stretch"):
                    st.session_state["aug_pick"] = random.choice(names)
                    st.rerun()
                image = load_image(result.root / pick)
            else:
                st.info(tr("That folder has no usable photos; upload one instead."))
    elif source == "upload":
        up = st.file_uploader(tr("A photo"), type=["jpg", "jpeg", "png", "webp", "bmp"], key="aug_upload")
        if up is not None:
            image = load_image(up.getvalue())
    else:
        shot = st.camera_input(tr("Take a photo"), resolution="720p", key="aug_camera")
        if shot is not None:
            image = load_image(shot.getvalue())
except FishcoreError as exc:
    st.error(error_text(exc))
if image is None:
    st.stop()

defaults = AugmentConfig()
current = (state().augment_cfg or defaults)
values = {}
with st.sidebar:
    st.header(tr("Augmentation"))
    c1, c2 = st.columns(2)
    reset = c1.button(tr("Defaults"), width="stretch")
    paper = c2.button(tr("The paper's (no colour jitter)"), width="stretch")
    if reset or paper:
        current = PAPER_AUGMENT if paper else defaults
        for p in AUGMENT_SPEC:
            st.session_state.pop(f"aug_{p.name}", None)
    for p in AUGMENT_SPEC:
        value = getattr(current, p.name)
        key = f"aug_{p.name}"
        if p.kind == "bool":
            values[p.name] = st.toggle(tr(p.label), value=value, help=tr(p.help), key=key)
        elif p.kind == "range":
            low, high = (float(v) for v in value)
            values[p.name] = st.slider(
                tr(p.label), float(p.minimum), float(p.maximum), (low, high), float(p.step), help=tr(p.help), key=key
            )
        else:
            values[p.name] = st.slider(
                tr(p.label), float(p.minimum), float(p.maximum), float(value), float(p.step), help=tr(p.help), key=key
            )
cfg = AugmentConfig(**values)
state().augment_cfg = cfg

c1, c2, c3 = st.columns([2, 1, 1])
n = c1.slider(tr("Views"), 1, 16, 8, key="aug_n")
seed = state().aug_seed
if c2.button(tr("New random draw"), width="stretch"):
    state().aug_seed = seed = seed + 1
c3.metric(tr("Seed"), seed)

try:
    views = preview(image, cfg, n=n, seed=seed)
except ValueError as exc:
    st.error(error_text(exc))
    st.stop()

left, right = st.columns([1, 3])
left.image(image, caption=tr("original {width}x{height}", width=image.width, height=image.height), width="stretch")
cols = right.columns(4)
for i, view in enumerate(views):
    cols[i % 4].image(view.image, caption=tr("view {n}", n=i + 1), width="stretch")

st.subheader(tr("The geometry of one view"))
chosen = st.selectbox(tr("View"), range(1, n + 1), format_func=lambda i: tr("view {n}", n=i), key="aug_chosen")
view = views[chosen - 1]
if view.matrix is None:
    st.info(tr("No affine transform is active (scale 1, rotation, shear and translation 0)."))
else:
    p = view.params
    m = view.matrix
    st.write(
        tr(
            "Rotation θ = {angle}°, scale s = {scale}, shear = ({shear_x}°, {shear_y}°), translation = ({dx}, {dy}) px",
            angle=num(p["angle"], 1),
            scale=num(p["scale"], 3),
            shear_x=num(p["shear"][0], 1),
            shear_y=num(p["shear"][1], 1),
            dx=num(p["translate"][0]),
            dy=num(p["translate"][1]),
        )
        + (", " + tr("mirrored left-right") if p.get("RandomHorizontalFlip") else "")
        + (", " + tr("mirrored top-bottom") if p.get("RandomVerticalFlip") else "")
    )
    st.latex(
        r"\begin{bmatrix}x'\\y'\\1\end{bmatrix}="
        r"\begin{bmatrix}" + r"\\".join("&".join(f"{v:.3f}" for v in row) for row in m) + r"\end{bmatrix}"
        r"\begin{bmatrix}x\\y\\1\end{bmatrix}"
    )
    st.caption(
        tr(
            "Without shear this is the paper's rotation: x' = s(x cos θ − y sin θ) + tₓ, y' = s(x sin θ + y cos θ) + t_y, "
            "taken about the image centre (pixel coordinates, y pointing down). Reflections are applied after it."
        )
    )
    buf = io.BytesIO()
    view.image.save(buf, "PNG")
    st.download_button(tr("Download this view"), buf.getvalue(), f"view_{chosen}.png", "image/png")
    with st.expander(tr("Matrix as a table")):
        st.dataframe(pd.DataFrame(np.round(m, 4), columns=["x", "y", "1"], index=["x'", "y'", "1"]))
