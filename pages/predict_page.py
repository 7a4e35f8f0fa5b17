"""Predict: photograph or upload a catch, get the species with an honest confidence.

Laid out for a phone held in one hand: the camera first, then one big answer per photo, then the
details; the confidence threshold sits in the settings below.
"""

import hashlib
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.inference.openset import CONFIDENT, LOW_CONFIDENCE, NOT_A_FISH, REASON_WORDS, UNCERTAIN, VERDICT_WORDS
from fishcore.store.model_files import model_checksum
from fishcore.store.samples import sample_photos
from pages._catch import catch_log, where_kept, who, word_buttons
from pages._i18n import error_text, pct, tr
from pages._shared import (
    SAMPLE_SET_WORDS,
    heat_map_panel,
    load_predictor,
    promise_caption,
    slider_threshold,
    species_card_panel,
    species_name,
    workspace,
)
from pages._state import state

st.title(tr("What fish is this?"))
model_dir = workspace().active_model()
if model_dir is None:
    st.warning(tr("No model yet: train one on the Train page."))
    st.stop()
try:
    predictor = load_predictor(model_dir)
except FishcoreError as exc:
    st.error(tr("The active model cannot be used: {error}. Choose another on the Models page.", error=exc))
    st.stop()

samples = sample_photos()
tab_names = [":material/photo_camera: " + tr("Camera"), ":material/upload: " + tr("Upload")]
tabs = st.tabs([*tab_names, ":material/image: " + tr("Try an example")] if samples else tab_names)
tab_camera, tab_upload = tabs[:2]
photos: list[tuple[str, bytes]] = []
example_note = None
with tab_camera:
    shot = st.camera_input(tr("Take a photo of the fish, side on, filling the frame"), resolution="720p", key="pred_camera")
    if shot is not None:
        photos.append((tr("camera photo"), shot.getvalue()))
with tab_upload:
    uploads = st.file_uploader(
        tr("Photos"), type=["jpg", "jpeg", "png", "webp", "bmp"], accept_multiple_files=True, key="pred_upload"
    )
    photos += [(u.name, u.getvalue()) for u in uploads or []]
if samples:
    with tabs[2]:
        pick = st.selectbox(
            tr("Example photo"),
            [None, *range(len(samples))],
            format_func=lambda i: (
                tr("Choose one...")
                if i is None
                else f"{samples[i].species} · {tr(SAMPLE_SET_WORDS[samples[i].source])} · {samples[i].path.name}"
            ),
            key="pred_example",
            help=tr(
                "Photos that come with the app: fish filmed on reefs (Fish4Knowledge) and in rivers (EGU), with their "
                "makers' notices."
            ),
        )
        if pick is not None:
            sample = samples[pick]
            photos.append((sample.path.name, sample.path.read_bytes()))
            known = {c.casefold() for c in predictor.classes}
            if sample.species.casefold() in known:
                example_note = tr(
                    "This example is a {species}, one of the species the model was trained on.", species=sample.species
                )
            else:
                example_note = tr(
                    "This example is a {species} ({source}), a species this model was never trained on: the honest "
                    'answer is "not sure" or "not a fish I can name", never a confident wrong name. Train a model '
                    "on photos of it (My photos, Train) to have it named.",
                    species=sample.species,
                    source=tr(SAMPLE_SET_WORDS[sample.source]),
                )

with st.expander(tr("Settings"), icon=":material/tune:"):
    st.caption(
        tr(
            "Model {name} knows {n} species: {species}.",
            name=model_dir.name,
            n=len(predictor.classes),
            species=", ".join(species_name(predictor, c) for c in predictor.classes),
        )
    )
    # A model's own threshold whenever the active model changes (a moved slider stays for the same model).
    if state().pred_threshold_of != predictor.card.weights_sha256:
        state().pred_threshold_of = predictor.card.weights_sha256
        st.session_state.pop("pred_threshold", None)
    threshold = st.slider(
        tr('Say "not sure" below this confidence'),
        0.0,
        1.0,
        slider_threshold(predictor.card),
        0.01,
        key="pred_threshold",
        help=tr(
            "The model's probability for its top answer. Photos unlike every training photo (other species, "
            "other things) are flagged whatever their probability."
        ),
    )
    st.caption(promise_caption(predictor.card, threshold))
    st.divider()
    recording = st.toggle(
        tr("Record answers in the catch log"),
        value=True,
        key="catch_on",
        help=tr("Each answer, its photo and your word on it; the Catch log page lists them."),
    )
    if recording:
        c1, c2 = st.columns(2)
        c1.text_input(tr("Place or landing site"), key="catch_place", max_chars=200, placeholder=tr("e.g. Muara Angke"))
        typed = c2.text_input(tr("Your name or device (optional)"), key="catch_name", max_chars=100)
        if typed.strip():
            state().catch_who = typed.strip()
        st.caption(where_kept(catch_log()))
    if predictor.openset is None:
        st.caption(
            tr(
                "This model was saved without a profile of its training photos, so only the confidence decides: "
                "retrain it to get 'not a fish' and 'a species I don't know' answers."
            )
        )

if not photos:
    st.info(tr("Take a photo or upload one or more."))
    st.stop()
if example_note:
    st.info(example_note, icon=":material/info:")


def verdict_box(p, prefix: str = "") -> None:
    """The answer, big: the species (in the session's language), how sure, and what to do when unsure."""
    name = species_name(predictor, p.label)
    if p.verdict == NOT_A_FISH:
        st.warning(f"### {prefix}{tr(VERDICT_WORDS[NOT_A_FISH])}.\n{tr(REASON_WORDS[p.reason])}", icon=":material/block:")
    elif p.verdict == UNCERTAIN:
        if p.reason == LOW_CONFIDENCE and len(p.candidates) > 1:
            names = ", ".join(species_name(predictor, label) for label, _ in p.candidates)
            guess = tr("Probably one of: {species} ({coverage}).", species=names, coverage=pct(p.coverage))
        else:
            guess = tr("Best guess: {species} ({confidence}).", species=name, confidence=pct(p.confidence))
        st.warning(f"### {prefix}{tr(VERDICT_WORDS[UNCERTAIN])}.\n" + guess + f" {tr(REASON_WORDS[p.reason])}")
    else:
        st.success(f"### {prefix}{name}\n" + tr("{confidence} confident", confidence=pct(p.confidence, 1)))


# Each photo goes through the model once per session and model; moving the slider only re-judges.
seen = state().pred_cache
results = []
bar = st.progress(0.0, text=tr("Looking...")) if len(photos) > 4 else None
for i, (name, data) in enumerate(photos):
    key = (str(model_dir), predictor.card.weights_sha256, hashlib.sha1(data).hexdigest())
    if key not in seen:
        try:
            [seen[key]] = predictor.predict([data], top_k=min(5, len(predictor.classes)), names=[name])
        except FishcoreError as exc:
            seen[key] = error_text(exc)
    cached = seen[key]
    if isinstance(cached, str):
        results.append((name, data, None, cached))
    else:
        results.append((name, data, predictor.judged(replace(cached, file=name), threshold), None))
    if bar:
        bar.progress((i + 1) / len(photos), text=tr("Looking...") + f" {i + 1}/{len(photos)}")
if bar:
    bar.empty()

# The catch log: each answer once per session, model version and photo (a rerun does not record it again).
entry_ids: dict[int, str] = {}
if recording:
    log = catch_log()
    checksum = model_checksum(model_dir)
    logged = state().catch_logged
    spooled = False
    for i, (_name, data, p, _err) in enumerate(results):
        if p is None:
            continue
        key = (checksum, hashlib.sha1(data).hexdigest())
        if key not in logged:
            try:
                place = (state().catch_place or "")
                done = log.record(data, predictor.answer(p, threshold), model_dir.name, checksum, place=place, session=who())
            except FishcoreError as exc:
                st.error(tr("Not recorded in the catch log: {error}", error=error_text(exc)))
                continue
            logged[key] = done.entry_id
            spooled = spooled or done.spooled
        entry_ids[i] = logged[key]
    if spooled:
        st.warning(
            tr("The catch log's database cannot be reached: the answer is kept on this machine and written when it is back.")
        )

readable = [(name, data) for name, data, p, _ in results if p is not None]
if 2 <= len(readable) <= 5 and st.toggle(
    tr("These photos show one fish: combine them into one answer"),
    key="pred_together",
    help=tr(
        "Two or three shots from different sides often settle what one photo cannot. The photos' "
        "probabilities are combined (averaged log-probabilities); each photo's own answer stays below."
    ),
):
    # Like single photos: the network runs once per set of photos; moving the slider only re-judges.
    key = (str(model_dir), predictor.card.weights_sha256, *(hashlib.sha1(data).hexdigest() for _, data in readable))
    if key not in seen:
        try:
            seen[key], _ = predictor.predict_together([data for _, data in readable], top_k=3)
        except FishcoreError as exc:
            seen[key] = error_text(exc)
    if isinstance(seen[key], str):
        st.error(tr("Cannot combine these photos: {error}", error=seen[key]))
    else:
        verdict_box(predictor.judged(seen[key], threshold), tr("{n} photos together:", n=len(readable)) + " ")

if len(results) > 1:
    table = pd.DataFrame(
        [
            {
                tr("photo"): name,
                tr("species"): species_name(predictor, p.label) if p else "",
                tr("confidence"): p.confidence if p else None,
                tr("verdict"): tr({"confident": "confident", UNCERTAIN: "not sure", NOT_A_FISH: "not a fish"}[p.verdict])
                if p
                else tr("error: {error}", error=err),
            }
            for name, _, p, err in results
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            tr("confidence"): st.column_config.ProgressColumn(tr("confidence"), min_value=0.0, max_value=1.0, format="percent")
        },
    )
    st.download_button(tr("Download as CSV"), table.to_csv(index=False), "predictions.csv", "text/csv")

if predictor.promise is not None and predictor.promise.backed and any(p and p.verdict == CONFIDENT for _, _, p, _ in results):
    st.caption(
        tr(
            "Confident answers of this model were right at least {precision} of the time on photos it never trained on.",
            precision=pct(predictor.promise.precision),
        ),
        help=promise_caption(predictor.card, threshold),
    )
for n, (name, data, p, err) in enumerate(results):
    st.divider()
    if err:
        st.error(f"{name}: {err}")
        continue
    verdict_box(p)
    entry = log.get(entry_ids[n]) if n in entry_ids else None
    if entry is not None:
        word_buttons(log, entry, predictor.classes, key=f"pred_word_{n}", name=lambda c: species_name(predictor, c))
    left, right = st.columns([1, 2])
    left.image(data, caption=name, width="stretch")
    if p.verdict == NOT_A_FISH:
        continue
    frame = pd.DataFrame(
        {"species": [species_name(predictor, label) for label, _ in p.top], "probability": [prob for _, prob in p.top]}
    )
    right.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=tr("probability")),
            y=alt.Y("species:N", sort="-x", title=None),
            tooltip=["species", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=30 * len(frame) + 20),
        width="stretch",
    )
    with right:
        species_card_panel(predictor, p.label)
    # Computed only when asked for: a heat map costs a network pass and its backward pass.
    if right.toggle(tr("Where did the model look?"), key=f"pred_heat_on_{n}"):
        with right:
            heat_map_panel(predictor, data, p.label, key=f"pred_heat_{n}")
