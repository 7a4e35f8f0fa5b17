"""Home: what the app does, the active model's card, and where to go next."""

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.model_files import read_card
from pages._shared import workspace

st.title("Marine fish species classifier")
st.write(
    'Name the fish species in a photo, offline, with an honest confidence and a plain "not sure" when the '
    "model does not know. Bring photos of new species and retrain it yourself: transfer learning on an "
    "ImageNet-pretrained residual network takes minutes on a laptop."
)

model_dir = workspace().active_model()
if model_dir is None:
    st.warning("No model yet. Train one on the Train page.")
else:
    try:
        card = read_card(model_dir)
    except FishcoreError as exc:
        st.error(f"The active model cannot be read: {exc}")
    else:
        test = card.metrics.get("test", {})
        st.subheader(f"Active model: {model_dir.name}")
        cols = st.columns(4)
        cols[0].metric("Species", len(card.classes))
        cols[1].metric(
            "Test accuracy", f"{test['accuracy']:.1%}" if test else "n/a", help=f"on {test.get('n', 0)} held-out photos"
        )
        cols[2].metric("Test macro-F1", f"{test['macro_f1']:.3f}" if test else "n/a")
        cols[3].metric("Training time", f"{card.training.total_seconds:.0f} s")
        st.write(f"**Species:** {', '.join(card.classes)}")
        st.write(
            f"**How it was trained:** {card.backbone} ({card.backbone_weights_source}); "
            f"{card.training.mode} mode"
            + (f" (chose {card.training.recipe} on validation photos)" if card.training.recipe else "")
            + f", {card.training.epochs} epoch(s) on {len(card.split.get('train', []))} photos, "
            f"created {card.created}."
        )
        for note in card.notes:
            st.caption(note)

st.subheader("Where next")
c1, c2, c3 = st.columns(3)
c1.page_link("pages/predict_page.py", label="Name a fish from a photo", icon=":material/photo_camera:")
c2.page_link("pages/augment_page.py", label="See what augmentation does", icon=":material/science:")
c3.page_link("pages/train_page.py", label="Train on your own species", icon=":material/model_training:")
