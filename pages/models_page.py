"""Models: every saved model and its versions; make one active, export it (ONNX or zip), import one, delete."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.export import export_onnx, import_model_zip
from fishcore.store.model_files import bundled_model_dir, delete_model, family_of, model_archive
from fishcore.store.species import save_cards
from pages._shared import workspace

ws = workspace()
st.title("Models")
active = ws.active_model()
rows = ws.models_with_cards()


@st.cache_data(max_entries=8, show_spinner="Exporting to ONNX...")
def onnx_bundle(model_dir: str, card_mtime: float) -> bytes:
    """The ONNX file, its labels and its preprocessing, zipped (built once per model version)."""
    import io
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        files = export_onnx(model_dir, Path(tmp) / Path(model_dir).name)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.name)
    return buf.getvalue()


def species_editor(path: Path, card) -> None:
    """Edit the model's species cards (names in English and Bahasa Indonesia, scientific name, notes)."""
    columns = {"en": "English name", "id": "Indonesian name", "scientific": "Scientific name",
               "note_en": "Note (English)", "note_id": "Note (Indonesian)"}  # fmt: skip
    frame = pd.DataFrame(
        [{"class": c, **{label: (card.species.get(c) or {}).get(f, "") for f, label in columns.items()}} for c in card.classes]
    )
    edited = st.data_editor(frame, hide_index=True, disabled=["class"], key=f"cards_{path}", width="stretch", num_rows="fixed")
    st.caption("Shown on Predict with each answer, in the language chosen in the sidebar; saved inside the model.")
    if st.button("Save species cards", key=f"save_cards_{path}"):
        cards = {row["class"]: {f: row[label] for f, label in columns.items()} for row in edited.to_dict("records")}
        try:
            save_cards(path, cards)
        except (FishcoreError, OSError) as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.session_state["models_message"] = f"Species cards of {path.name} saved."
            st.rerun()


with st.expander("Import a model (.zip exported from another install)"):
    upload = st.file_uploader("Model zip", type=["zip"], key=f"model_zip_{st.session_state.get('model_zip_n', 0)}")
    if upload is not None and st.button("Import", type="primary"):
        try:
            path = import_model_zip(upload.getvalue(), ws.models)
        except FishcoreError as exc:
            st.error(f"Not imported: {exc}")
        else:
            st.session_state["model_zip_n"] = st.session_state.get("model_zip_n", 0) + 1
            st.session_state["models_message"] = f"Imported as {path.name}."
            st.rerun()
if st.session_state.get("models_message"):
    st.success(st.session_state.pop("models_message"), icon=":material/check_circle:")

if not rows:
    st.info("No models yet: train one on the Train page.")

# Versions of one model sit together, newest first.
families: dict[str, list] = {}
for row in rows:
    families.setdefault(family_of(row[0].name)[0], []).append(row)
for family, members in families.items():
    members.sort(key=lambda r: family_of(r[0].name)[1], reverse=True)
    if len(members) > 1:
        st.markdown(f"#### {family} · {len(members)} versions")
    for path, card, why in members:
        is_active = active is not None and path.resolve() == active.resolve()
        with st.container(border=True):
            st.subheader(path.name + ("  :material/check_circle: active" if is_active else ""))
            if card is None:
                st.error(f"Cannot be used: {why}")
            else:
                test = card.metrics.get("test", {})
                c = st.columns(5)
                c[0].metric("Species", len(card.classes))
                c[1].metric("Test accuracy", f"{test['accuracy']:.1%}" if test else "n/a")
                c[2].metric("Test macro-F1", f"{test['macro_f1']:.3f}" if test else "n/a")
                c[3].metric("Backbone", card.backbone)
                c[4].metric("Training", f"{card.training.total_seconds:.0f} s", help=f"{card.training.mode} mode")
                lineage = card.lineage or {}
                history = f"Version {lineage.get('version', 1)}"
                if lineage.get("parent"):
                    history += f", follows {lineage['parent']}"
                    if lineage.get("classes_added"):
                        history += f"; added {', '.join(lineage['classes_added'])}"
                    if lineage.get("classes_removed"):
                        history += f"; removed {', '.join(lineage['classes_removed'])}"
                st.caption(f"{history} · {card.training.mode} mode · created {card.created} · species: {', '.join(card.classes)}")
            b = st.columns(4)
            if card is not None and not is_active and b[0].button("Make active", key=f"activate_{path}"):
                ws.set_active_model(path)
                st.rerun()
            if card is not None:
                # Callables: a file is built only when its button is clicked.
                b[1].download_button(
                    "Download (.zip)", lambda p=path: model_archive(p), f"{path.name}.zip", "application/zip", key=f"dl_{path}"
                )
                b[2].download_button(
                    "Export ONNX",
                    lambda p=path: onnx_bundle(str(p), (p / "card.json").stat().st_mtime),
                    f"{path.name}-onnx.zip",
                    "application/zip",
                    key=f"onnx_{path}",
                    help="The network with its calibration as model.onnx (image in, probabilities out), the species "
                    "names in order, and how to prepare a photo: for use in any ONNX runtime.",
                )
            if card is not None and st.toggle("Species names and notes", key=f"cards_on_{path}"):
                species_editor(path, card)
            if path.resolve() == bundled_model_dir().resolve():
                b[3].caption("The bundled model stays (it is part of the project).")
            else:
                with b[3].popover("Delete"):
                    st.write(f"Delete **{path.name}** for good? Other versions stay.")
                    if st.button("Yes, delete it", type="primary", key=f"delete_{path}"):
                        try:
                            delete_model(path)
                        except FishcoreError as exc:
                            st.error(str(exc))
                        else:
                            st.rerun()
