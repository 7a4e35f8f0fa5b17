"""Augmentation lab: the paper's transforms, live, from the same factory training uses."""

import io
import random

import numpy as np
import pandas as pd
import streamlit as st

from fishcore.config import AUGMENT_SPEC, AugmentConfig
from fishcore.data.augment import preview
from fishcore.data.dataset import load_image
from fishcore.errors import FishcoreError
from pages._shared import dataset_input, scan_dataset

st.title("Augmentation lab")
st.caption(
    "Each view below is made by `fishcore.augment.build_transforms(cfg, train=True)`, the very function the "
    "training loop uses, so what you see is what the model is trained on. The settings you choose here are "
    "the ones the Train page uses."
)

source = st.radio("Photo", ["From the dataset", "Upload", "Camera"], horizontal=True, key="aug_source")
image = None
try:
    if source == "From the dataset":
        root = dataset_input("aug")
        if root:
            result = scan_dataset(root)
            if result.items:
                names = [item.path for item in result.items]
                if "aug_pick" not in st.session_state or st.session_state["aug_pick"] not in names:
                    st.session_state["aug_pick"] = names[0]
                c1, c2 = st.columns([4, 1])
                pick = c1.selectbox("Photo", names, key="aug_pick")
                if c2.button("Random photo", width="stretch"):
                    st.session_state["aug_pick"] = random.choice(names)
                    st.rerun()
                image = load_image(result.root / pick)
            else:
                st.info("That folder has no usable photos; upload one instead.")
    elif source == "Upload":
        up = st.file_uploader("A photo", type=["jpg", "jpeg", "png", "webp", "bmp"], key="aug_upload")
        if up is not None:
            image = load_image(up.getvalue())
    else:
        shot = st.camera_input("Take a photo", resolution="720p", key="aug_camera")
        if shot is not None:
            image = load_image(shot.getvalue())
except FishcoreError as exc:
    st.error(str(exc))
if image is None:
    st.stop()

defaults = AugmentConfig()
current = st.session_state.get("augment_cfg", defaults)
values = {}
with st.sidebar:
    st.header("Augmentation")
    if st.button("Paper defaults"):
        current = defaults
        for p in AUGMENT_SPEC:
            st.session_state.pop(f"aug_{p.name}", None)
    for p in AUGMENT_SPEC:
        value = getattr(current, p.name)
        key = f"aug_{p.name}"
        if p.kind == "bool":
            values[p.name] = st.toggle(p.label, value=value, help=p.help, key=key)
        elif p.kind == "range":
            low, high = (float(v) for v in value)
            values[p.name] = st.slider(
                p.label, float(p.minimum), float(p.maximum), (low, high), float(p.step), help=p.help, key=key
            )
        else:
            values[p.name] = st.slider(
                p.label, float(p.minimum), float(p.maximum), float(value), float(p.step), help=p.help, key=key
            )
cfg = AugmentConfig(**values)
st.session_state["augment_cfg"] = cfg

c1, c2, c3 = st.columns([2, 1, 1])
n = c1.slider("Views", 1, 16, 8, key="aug_n")
seed = st.session_state.setdefault("aug_seed", 0)
if c2.button("New random draw", width="stretch"):
    st.session_state["aug_seed"] = seed = seed + 1
c3.metric("Seed", seed)

try:
    views = preview(image, cfg, n=n, seed=seed)
except ValueError as exc:
    st.error(str(exc))
    st.stop()

left, right = st.columns([1, 3])
left.image(image, caption=f"original {image.width}x{image.height}", width="stretch")
cols = right.columns(4)
for i, view in enumerate(views):
    cols[i % 4].image(view.image, caption=f"view {i + 1}", width="stretch")

st.subheader("The geometry of one view")
chosen = st.selectbox("View", range(1, n + 1), format_func=lambda i: f"view {i}", key="aug_chosen")
view = views[chosen - 1]
if view.matrix is None:
    st.info("No affine transform is active (scale 1, rotation, shear and translation 0).")
else:
    p = view.params
    m = view.matrix
    st.write(
        f"Rotation θ = {p['angle']:.1f}°, scale s = {p['scale']:.3f}, shear = ({p['shear'][0]:.1f}°, {p['shear'][1]:.1f}°), "
        f"translation = ({p['translate'][0]:.0f}, {p['translate'][1]:.0f}) px"
        + (", mirrored left-right" if p.get("RandomHorizontalFlip") else "")
        + (", mirrored top-bottom" if p.get("RandomVerticalFlip") else "")
    )
    st.latex(
        r"\begin{bmatrix}x'\\y'\\1\end{bmatrix}="
        r"\begin{bmatrix}" + r"\\".join("&".join(f"{v:.3f}" for v in row) for row in m) + r"\end{bmatrix}"
        r"\begin{bmatrix}x\\y\\1\end{bmatrix}"
    )
    st.caption(
        "Without shear this is the paper's rotation: x' = s(x cos θ − y sin θ) + tₓ, y' = s(x sin θ + y cos θ) + t_y, "
        "taken about the image centre (pixel coordinates, y pointing down). Reflections are applied after it."
    )
    buf = io.BytesIO()
    view.image.save(buf, "PNG")
    st.download_button("Download this view", buf.getvalue(), f"view_{chosen}.png", "image/png")
    with st.expander("Matrix as a table"):
        st.dataframe(pd.DataFrame(np.round(m, 4), columns=["x", "y", "1"], index=["x'", "y'", "1"]))
