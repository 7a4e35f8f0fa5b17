"""Home: what the app does, the active model's card, and where to go next."""

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.model_files import read_card
from fishcore.store.species import display_name
from pages._i18n import language, num, pct, tr, when
from pages._shared import workspace

st.title(tr("Marine fish species classifier"))
st.write(
    tr(
        'Name the fish species in a photo, offline, with an honest confidence and a plain "not sure" when the '
        "model does not know. Bring photos of new species and retrain it yourself: transfer learning on an "
        "ImageNet-pretrained residual network takes minutes on a laptop."
    )
)

model_dir = workspace().active_model()
if model_dir is None:
    st.warning(tr("No model yet. Train one on the Train page."))
else:
    try:
        card = read_card(model_dir)
    except FishcoreError as exc:
        st.error(tr("The active model cannot be read: {error}", error=exc))
    else:
        test = card.metrics.get("test", {})
        st.subheader(tr("Active model: {name}", name=model_dir.name))
        cols = st.columns(4)
        cols[0].metric(tr("Species"), len(card.classes))
        cols[1].metric(
            tr("Test accuracy"),
            pct(test["accuracy"], 1) if test else "n/a",
            help=tr("on {n} held-out photos", n=test.get("n", 0)),
        )
        cols[2].metric(tr("Test macro-F1"), num(test["macro_f1"], 3) if test else "n/a")
        cols[3].metric(tr("Training time"), f"{num(card.training.total_seconds)} s")
        names = ", ".join(display_name(card.species, c, language()) for c in card.classes)
        st.write(tr("**Species:** {names}", names=names))
        st.write(
            tr(
                "**How it was trained:** {backbone} ({source}); {mode} mode, {epochs} epoch(s) on {n} photos, created {created}.",
                backbone=card.backbone,
                source=card.backbone_weights_source,
                mode=card.training.mode,
                epochs=card.training.epochs,
                n=len(card.split.get("train", [])),
                created=when(card.created),
            )
            + (" " + tr("Chosen on validation photos: {recipe}.", recipe=card.training.recipe) if card.training.recipe else "")
        )
        for note in card.notes:
            st.caption(note)

st.subheader(tr("Where next"))
c1, c2, c3 = st.columns(3)
c1.page_link("pages/predict_page.py", label=tr("Name a fish from a photo"), icon=":material/photo_camera:")
c2.page_link("pages/augment_page.py", label=tr("See what augmentation does"), icon=":material/science:")
c3.page_link("pages/train_page.py", label=tr("Train on your own species"), icon=":material/model_training:")
