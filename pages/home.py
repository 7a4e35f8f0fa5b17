"""Home: what the app does and the active model's card."""

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.storage import DEFAULT_MODEL_DIR, read_card

st.title("🐟 Marine fish species classifier")
st.write(
    "Tells marine fish species apart from photos with an ImageNet-pretrained residual network, "
    "fine-tuned by transfer learning. Train it on your own species, see what augmentation does, "
    "and check how well it works before you trust it."
)

try:
    card = read_card(DEFAULT_MODEL_DIR)
except FishcoreError as exc:
    st.warning(f"No bundled model available: {exc}")
else:
    test = card.metrics.get("test", {})
    st.subheader("Active model")
    cols = st.columns(4)
    cols[0].metric("Species", len(card.classes))
    cols[1].metric("Test accuracy", f"{test.get('accuracy', float('nan')):.1%}")
    cols[2].metric("Test macro-F1", f"{test.get('macro_f1', float('nan')):.3f}")
    cols[3].metric("Training time", f"{card.training.get('seconds', 0):.0f} s")
    st.write(f"**Backbone:** {card.backbone} ({card.backbone_weights_source})")
    st.write(f"**Trained:** {card.created} on {sum(card.dataset.get('counts', {}).values())} photos")
    st.write("**Species:** " + ", ".join(card.classes))
    for note in card.notes:
        st.caption(note)
