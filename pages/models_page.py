"""Models: every saved model and its versions; make one active, export it (ONNX or zip), import one, delete."""

from pathlib import Path

import pandas as pd
import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.inference.calibration import Promise
from fishcore.inference.package import onnx_bundle
from fishcore.store.catchlog.kept_back import kept_back_set
from fishcore.store.export import import_model_zip
from fishcore.store.model_files import bundled_model_dir, delete_model, family_of, model_archive
from fishcore.store.species import save_cards
from fishcore.training.teaching import KeptBackScore, kept_back_score
from pages._catch import catch_log
from pages._i18n import error_text, num, pct, tr, when
from pages._shared import promise_caption, workspace
from pages._state import state

# A species card's fields and the editor's column for each.
CARD_COLUMNS = {"en": "English name", "id": "Indonesian name", "scientific": "Scientific name",
                "note_en": "Note (English)", "note_id": "Note (Indonesian)"}  # fmt: skip

ws = workspace()
st.title(tr("Models"))
active = ws.active_model()
rows = ws.models_with_cards()


@st.cache_data(max_entries=8, show_spinner=False)
def onnx_zip(model_dir: str, card_mtime: float) -> bytes:
    """The ONNX file, its labels and its preprocessing, zipped (built once per model version)."""
    with st.spinner(tr("Exporting to ONNX...")):
        return onnx_bundle(model_dir)


def species_editor(path: Path, card) -> None:
    """Edit the model's species cards (names in English and Bahasa Indonesia, scientific name, notes)."""
    columns = {field: tr(label) for field, label in CARD_COLUMNS.items()}
    label_column = tr("class")
    frame = pd.DataFrame(
        [
            {label_column: c, **{label: (card.species.get(c) or {}).get(f, "") for f, label in columns.items()}}
            for c in card.classes
        ]
    )
    edited = st.data_editor(
        frame, hide_index=True, disabled=[label_column], key=f"cards_{path}", width="stretch", num_rows="fixed"
    )
    st.caption(tr("Shown on Predict with each answer, in the language chosen in the sidebar; saved inside the model."))
    if st.button(tr("Save species cards"), key=f"save_cards_{path}"):
        cards = {row[label_column]: {f: row[label] for f, label in columns.items()} for row in edited.to_dict("records")}
        try:
            save_cards(path, cards)
        except (FishcoreError, OSError) as exc:
            st.error(tr("Not saved: {error}", error=exc))
        else:
            state().models_message = tr("Species cards of {name} saved.", name=path.name)
            st.rerun()


with st.expander(tr("Import a model (.zip exported from another install)")):
    upload = st.file_uploader(tr("Model zip"), type=["zip"], key=f"model_zip_{state().model_zip_n}")
    if upload is not None and st.button(tr("Import"), type="primary"):
        try:
            path = import_model_zip(upload.getvalue(), ws.models)
        except FishcoreError as exc:
            st.error(tr("Not imported: {error}", error=exc))
        else:
            state().model_zip_n = state().model_zip_n + 1
            state().models_message = tr("Imported as {name}.", name=path.name)
            st.rerun()
if state().models_message:
    st.success(state().models_message, icon=":material/check_circle:")
    del state().models_message

if not rows:
    st.info(tr("No models yet: train one on the Train page."))
previous = ws.previous_model()
if active is not None and previous is not None:
    left, right = st.columns([3, 1])
    left.caption(
        tr("Active: **{name}**. Predict, the field server and every phone (at its next sync) use it.", name=active.name)
    )
    if right.button(tr("Roll back to {name}", name=previous.name), key="rollback", icon=":material/undo:"):
        try:
            ws.rollback()
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            state().models_message = tr("{name} is the active model again.", name=previous.name)
            st.rerun()

# The field test set: confirmed catch log photos never taught; each version is scored on them (cached per model
# version and set, so a page load predicts nothing it predicted before).
try:
    field_set = kept_back_set(catch_log().entries())
except FishcoreError:
    field_set = []


@st.cache_data(show_spinner=False, max_entries=64)
def _kept_back_score(model_dir: str, card_mtime: float, signature: tuple) -> KeptBackScore:
    return kept_back_score(model_dir, catch_log(), field_set)


def field_accuracy(path: Path) -> KeptBackScore | None:
    signature = tuple(sorted((e.photo_sha256, e.species) for e in field_set))
    try:
        return _kept_back_score(str(path), (path / "card.json").stat().st_mtime, signature)
    except FishcoreError:
        return None


# Versions of one model sit together, newest first.
families: dict[str, list] = {}
for row in rows:
    families.setdefault(family_of(row[0].name)[0], []).append(row)
for family, members in families.items():
    members.sort(key=lambda r: family_of(r[0].name)[1], reverse=True)
    if len(members) > 1:
        st.markdown("#### " + tr("{family} · {n} versions", family=family, n=len(members)))
    for path, card, why in members:
        is_active = active is not None and path.resolve() == active.resolve()
        with st.container(border=True):
            st.subheader(path.name + ("  :material/check_circle: " + tr("active") if is_active else ""))
            if card is None:
                st.error(tr("Cannot be used: {reason}", reason=why))
            else:
                test = card.metrics.get("test", {})
                mode = tr("{mode} mode", mode=card.training.mode)
                c = st.columns(6)
                c[0].metric(tr("Species"), len(card.classes))
                c[1].metric(tr("Test accuracy"), pct(test["accuracy"], 1) if test else tr("n/a"))
                c[2].metric(tr("Test macro-F1"), num(test["macro_f1"], 3) if test else tr("n/a"))
                score = field_accuracy(path) if field_set else None
                c[3].metric(
                    tr("On your photos"),
                    pct(score.accuracy, 1) if score and score.total else tr("n/a"),
                    help=tr(
                        "Accuracy on the field test set: confirmed catch log photos that no version is taught with "
                        "(every fifth, chosen by the photo itself)."
                    ),
                )
                c[4].metric(tr("Backbone"), card.backbone)
                c[5].metric(tr("Training"), f"{num(card.training.total_seconds)} s", help=mode)
                st.caption(promise_caption(card))
                if score and score.total:
                    st.caption(
                        tr(
                            "Field test: right on {right} of {total} of your confirmed photos; confident answers right "
                            "on your photos: {c_right} of {c_total}.",
                            right=score.right,
                            total=score.total,
                            c_right=score.confident_right,
                            c_total=score.confident,
                        )
                    )
                    promise = Promise.from_card(card.promise)
                    if promise is not None and score.breaks_promise(promise.precision):
                        st.warning(
                            tr(
                                "On your photos this version's confident answers are right less often than the "
                                "{precision} it promises: teach it your confirmed photos (Catch log) and retrain.",
                                precision=pct(promise.precision),
                            )
                        )
                field = card.dataset.get("field_photos")
                if field:
                    st.caption(tr("Learned from {n} field photos of the catch log.", n=field["count"]))
                lineage = card.lineage or {}
                history = tr("Version {n}", n=lineage.get("version", 1))
                if lineage.get("parent"):
                    history += ", " + tr("follows {parent}", parent=lineage["parent"])
                    if lineage.get("classes_added"):
                        history += "; " + tr("added {names}", names=", ".join(lineage["classes_added"]))
                    if lineage.get("classes_removed"):
                        history += "; " + tr("removed {names}", names=", ".join(lineage["classes_removed"]))
                created = tr("created {when}", when=when(card.created))
                species = tr("species: {names}", names=", ".join(card.classes))
                st.caption(f"{history} · {mode} · {created} · {species}")
            b = st.columns(4)
            if card is not None and not is_active and b[0].button(tr("Make active"), key=f"activate_{path}"):
                ws.set_active_model(path, why="Models page")
                st.rerun()
            if card is not None:
                # Callables: a file is built only when its button is clicked.
                b[1].download_button(
                    tr("Download (.zip)"),
                    lambda p=path: model_archive(p),
                    f"{path.name}.zip",
                    "application/zip",
                    key=f"dl_{path}",
                )
                b[2].download_button(
                    tr("Export ONNX"),
                    lambda p=path: onnx_zip(str(p), (p / "card.json").stat().st_mtime),
                    f"{path.name}-onnx.zip",
                    "application/zip",
                    key=f"onnx_{path}",
                    help=tr(
                        "The network with its calibration as model.onnx (image in, probabilities out), the species "
                        "names in order, and how to prepare a photo: for use in any ONNX runtime."
                    ),
                )
            if card is not None and st.toggle(tr("Species names and notes"), key=f"cards_on_{path}"):
                species_editor(path, card)
            if path.resolve() == bundled_model_dir().resolve():
                b[3].caption(tr("The bundled model stays (it is part of the project)."))
            else:
                with b[3].popover(tr("Delete")):
                    st.write(tr("Delete **{name}** for good? Other versions stay.", name=path.name))
                    if st.button(tr("Yes, delete it"), type="primary", key=f"delete_{path}"):
                        try:
                            delete_model(path)
                        except FishcoreError as exc:
                            st.error(error_text(exc))
                        else:
                            st.rerun()
