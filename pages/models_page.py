"""Models: every saved model with its card; choose the active one, download or delete."""

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.model_files import bundled_model_dir, delete_model, model_archive
from pages._shared import workspace

ws = workspace()
st.title("Models")
active = ws.active_model()
rows = ws.models_with_cards()
if not rows:
    st.info("No models yet: train one on the Train page.")

for path, card, why in rows:
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
            c[4].metric("Training", f"{card.training.total_seconds:.0f} s")
            st.caption(f"Created {card.created} · species: {', '.join(card.classes)}")
        b = st.columns(3)
        if card is not None and not is_active and b[0].button("Make active", key=f"activate_{path}"):
            ws.set_active_model(path)
            st.rerun()
        if card is not None:
            # A callable: the zip is built only when the button is clicked.
            b[1].download_button(
                "Download (.zip)", lambda p=path: model_archive(p), f"{path.name}.zip", "application/zip", key=f"dl_{path}"
            )
        if path.resolve() == bundled_model_dir().resolve():
            b[2].caption("The bundled model stays (it is part of the project).")
        else:
            with b[2].popover("Delete"):
                st.write(f"Delete **{path.name}** for good?")
                if st.button("Yes, delete it", type="primary", key=f"delete_{path}"):
                    try:
                        delete_model(path)
                    except FishcoreError as exc:
                        st.error(str(exc))
                    else:
                        st.rerun()
