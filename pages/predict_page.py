"""Predict: photograph or upload a catch, get the species with an honest confidence."""

import hashlib
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.inference.openset import NOT_A_FISH, REASON_WORDS, UNCERTAIN
from pages._shared import heat_map_panel, load_predictor, workspace

VERDICT_WORDS = {"confident": "confident", UNCERTAIN: "not sure", NOT_A_FISH: "not a fish"}

st.title("What fish is this?")
model_dir = workspace().active_model()
if model_dir is None:
    st.warning("No model yet: train one on the Train page.")
    st.stop()
try:
    predictor = load_predictor(model_dir)
except FishcoreError as exc:
    st.error(f"The active model cannot be used: {exc}. Choose another on the Models page.")
    st.stop()

st.caption(f"Model **{model_dir.name}** knows {len(predictor.classes)} species: {', '.join(predictor.classes)}.")
threshold = st.slider(
    'Say "not sure" below this confidence',
    0.0,
    1.0,
    float(predictor.card.threshold),
    0.05,
    key="pred_threshold",
    help="The model's probability for its top answer. Photos unlike every training photo (other species, "
    "other things) are flagged whatever their probability.",
)
if predictor.openset is None:
    st.caption(
        "This model was saved without a profile of its training photos, so only the confidence decides: "
        "retrain it to get 'not a fish' and 'a species I don't know' answers."
    )
tab_camera, tab_upload = st.tabs([":material/photo_camera: Camera", ":material/upload: Upload"])
photos: list[tuple[str, bytes]] = []
with tab_camera:
    shot = st.camera_input("Take a photo of the fish, side on, filling the frame", resolution="720p", key="pred_camera")
    if shot is not None:
        photos.append(("camera photo", shot.getvalue()))
with tab_upload:
    uploads = st.file_uploader(
        "Photos", type=["jpg", "jpeg", "png", "webp", "bmp"], accept_multiple_files=True, key="pred_upload"
    )
    photos += [(u.name, u.getvalue()) for u in uploads or []]

if not photos:
    st.info("Take a photo or upload one or more.")
    st.stop()

# Each photo goes through the model once per session and model; moving the slider only re-judges.
seen = st.session_state.setdefault("pred_cache", {})
results = []
bar = st.progress(0.0, text="Looking...") if len(photos) > 4 else None
for i, (name, data) in enumerate(photos):
    key = (str(model_dir), predictor.card.weights_sha256, hashlib.sha1(data).hexdigest())
    if key not in seen:
        try:
            [seen[key]] = predictor.predict([data], top_k=min(5, len(predictor.classes)), names=[name])
        except FishcoreError as exc:
            seen[key] = str(exc)
    cached = seen[key]
    if isinstance(cached, str):
        results.append((name, data, None, cached))
    else:
        results.append((name, data, predictor.judged(replace(cached, file=name), threshold), None))
    if bar:
        bar.progress((i + 1) / len(photos), text=f"Looking... {i + 1}/{len(photos)}")
if bar:
    bar.empty()

readable = [(name, data) for name, data, p, _ in results if p is not None]
if 2 <= len(readable) <= 5 and st.toggle(
    "These photos show one fish: combine them into one answer",
    key="pred_together",
    help="Two or three shots from different sides often settle what one photo cannot. The photos' "
    "probabilities are combined (averaged log-probabilities); each photo's own answer stays below.",
):
    try:
        together, _ = predictor.predict_together(
            [data for _, data in readable], top_k=3, threshold=threshold, names=[name for name, _ in readable]
        )
    except FishcoreError as exc:
        st.error(f"Cannot combine these photos: {exc}")
    else:
        words = f"{len(readable)} photos together: "
        if together.verdict == NOT_A_FISH:
            st.warning(f"**{words}not a fish I can name.** {REASON_WORDS[together.reason]}", icon=":material/block:")
        elif together.verdict == UNCERTAIN:
            st.warning(
                f"**{words}not sure.** Best guess: {together.label} ({together.confidence:.0%}). {REASON_WORDS[together.reason]}"
            )
        else:
            st.success(f"**{words}{together.label}** · {together.confidence:.1%} confident")

if len(results) > 1:
    table = pd.DataFrame(
        [
            {
                "photo": name,
                "species": p.label if p else "",
                "confidence": p.confidence if p else None,
                "verdict": VERDICT_WORDS[p.verdict] if p else f"error: {err}",
            }
            for name, _, p, err in results
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="percent")
        },
    )
    st.download_button("Download as CSV", table.to_csv(index=False), "predictions.csv", "text/csv")

for n, (name, data, p, err) in enumerate(results):
    st.divider()
    left, right = st.columns([1, 2])
    left.image(data, caption=name, width="stretch")
    if err:
        right.error(f"{name}: {err}")
        continue
    if p.verdict == NOT_A_FISH:
        right.warning(f"**Not a fish I can name.** {REASON_WORDS[p.reason]}", icon=":material/block:")
        continue
    if p.verdict == UNCERTAIN:
        right.warning(f"**Not sure.** Best guess: {p.label} ({p.confidence:.0%}). {REASON_WORDS[p.reason]}")
    else:
        right.success(f"**{p.label}** · {p.confidence:.1%} confident")
    frame = pd.DataFrame({"species": [label for label, _ in p.top], "probability": [prob for _, prob in p.top]})
    right.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("species:N", sort="-x", title=None),
            tooltip=["species", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=30 * len(frame) + 20),
        width="stretch",
    )
    # Computed only when asked for: a heat map costs a network pass and its backward pass.
    if right.toggle("Where did the model look?", key=f"pred_heat_on_{n}"):
        with right:
            heat_map_panel(predictor, data, p.label, key=f"pred_heat_{n}")
