"""Widgets and cached resources several pages share. Rendering only: the work is fishcore's."""

from __future__ import annotations

import math
import os
from pathlib import Path

import streamlit as st

from fishcore.data.scan import DatasetScan, scan
from fishcore.errors import PathNotAllowed
from fishcore.inference.calibration import Promise
from fishcore.inference.predict import Predictor
from fishcore.settings import Paths, paths_restricted
from fishcore.store.model_files import CARD_FILE, ModelCard
from fishcore.store.my_photos import DatasetArea
from fishcore.store.workspace import Workspace
from pages._i18n import error_text, language, pct, tr
from pages._state import state

OTHER_FOLDER = "\0other"


def workspace() -> Workspace:
    return Workspace.from_env()


def dataset_area() -> DatasetArea:
    ws = workspace()
    return DatasetArea(ws.datasets, cache_dir=ws.scans)


@st.cache_resource(max_entries=4, show_spinner=False)
def _predictor(model_dir: str, card_mtime: float) -> Predictor:
    # Read-only once built and shared by every session; card_mtime makes a retrained folder reload.
    return Predictor.load(model_dir, engine="auto")  # onnxruntime when it can: about 4x faster on CPU


def load_predictor(model_dir: Path) -> Predictor:
    """The model in model_dir, loaded once per app process (a shared, read-only resource)."""
    with st.spinner(tr("Loading the model...")):
        return _predictor(str(model_dir), (model_dir / CARD_FILE).stat().st_mtime)


def scan_dataset(root: str) -> DatasetScan:
    """Scan a dataset folder with a progress bar; unchanged files come from the scan cache on disk."""
    bar = st.progress(0.0, text=tr("Reading the dataset..."))

    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            bar.progress(done / max(total, 1), text=tr("Reading the dataset... {done}/{total} files", done=done, total=total))

    try:
        return scan(root, progress=progress, cache_dir=workspace().cache / "scans")
    finally:
        bar.empty()


def dataset_input(key: str = "dataset", label: str | None = None) -> str:
    """The dataset the pages work on (one per session): one of My photos' datasets, or any folder by path."""
    if "dataset_path" not in st.session_state:
        default = workspace().default_data
        state().dataset_path = str(default) if default else ""
    area = dataset_area()
    names = area.names()
    if names:
        current = Path(state().dataset_path or ".").expanduser()
        chosen = current.name if current.parent.resolve() == area.root.resolve() and current.name in names else OTHER_FOLDER
        options = [*names, OTHER_FOLDER]
        choice = st.selectbox(
            tr("Dataset"),
            options,
            index=options.index(chosen),
            key=f"{key}_dataset_choice",
            format_func=lambda n: tr("Another folder (type its path)") if n == OTHER_FOLDER else tr("{name} (My photos)", name=n),
            help=tr("Datasets made on the My photos page, or any folder with one sub-folder of photos per species."),
        )
        if choice != OTHER_FOLDER:
            state().dataset_path = str(area.path(choice))
            return state().dataset_path
        if chosen != OTHER_FOLDER:
            state().dataset_path = ""
    value = st.text_input(
        label or tr("Dataset folder"),
        value=state().dataset_path,
        key=f"{key}_path_box",
        help=tr("A folder with one sub-folder of photos per species. Set FISHCORE_DATA to change the default."),
    )
    state().dataset_path = value.strip()
    if not value.strip():
        return ""
    return str(readable_path(value.strip()))


def readable_path(typed: str) -> Path:
    """A typed server path the app may read; when shared on the network, only under the allowed folders.

    Outside them the page shows why and stops, so nothing of that folder is listed or shown.
    """
    try:
        Paths.from_env().check_readable(typed, paths_restricted(st.get_option("server.address")))
    except PathNotAllowed as exc:
        st.error(error_text(exc))
        st.stop()
    return Path(os.path.expanduser(typed))


# The sample sets shipped in assets/samples (fishcore.store.samples), in the app's words.
SAMPLE_SET_WORDS = {"egu": "EGU fish-pass video, Austria (freshwater)", "f4k": "Fish4Knowledge reef video, Taiwan"}

# The library reports codes (fishcore.events); these are the app's words for them.
PHASE_WORDS = {
    "starting": "starting",
    "scanning": "reading the photos",
    "caching_features": "computing features",
    "training": "training",
    "calibrating": "calibrating the confidence",
    "evaluating": "testing on held-out photos",
    "saving": "saving",
    "done": "done",
}
STOP_WORDS = {
    "completed": "Finished.",
    "early_stopping": "Finished early: the validation loss stopped improving.",
    "user": "Stopped by request.",
    "budget": "Finished: the time budget ran out, the best model found so far was kept.",
}
ERROR_WORDS = {
    "process_died": "Interrupted: the training process ended unexpectedly (killed, out of memory, or the machine "
    "restarted). Its log is kept; start it again with the same settings below.",
}


def outcome_words(status: dict) -> str:
    """How a finished, stopped or failed training job ended, in words (the session's language)."""
    if status.get("state") == "failed":
        error = status.get("error") or {}
        code = error.get("code")
        return tr(ERROR_WORDS[code]) if code in ERROR_WORDS else (error.get("text") or tr("The training failed."))
    words = tr(STOP_WORDS.get(status.get("stop_reason"), "Finished."))
    if status.get("stop_reason") == "user":
        words = (
            tr("Stopped by request; the best model so far was saved.")
            if status.get("saved")
            else tr("Stopped by request; nothing was saved.")
        )
    return words


def phase_word(code: str) -> str:
    """A job phase's code in words (the session's language)."""
    return tr(PHASE_WORDS[code]) if code in PHASE_WORDS else code


def heat_map_panel(predictor: Predictor, source: bytes | str, label: str, key: str) -> None:
    """Grad-CAM over a photo for the predicted species (or any other on request), with an opacity slider."""
    import hashlib

    from fishcore.errors import FishcoreError
    from fishcore.inference.explain import CAPTION, explain, overlay

    c1, c2 = st.columns([2, 1])
    chosen = c1.selectbox(
        tr("Evidence for"),
        predictor.classes,
        index=predictor.classes.index(label),
        key=f"{key}_class",
        format_func=lambda c: species_name(predictor, c),
        help=tr(CAPTION),
    )
    opacity = c2.slider(tr("Heat map opacity"), 0.0, 1.0, 0.5, 0.05, key=f"{key}_opacity")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    maps = state().heat_maps
    cache_key = (predictor.card.weights_sha256, hashlib.sha1(data).hexdigest(), chosen)
    if cache_key not in maps:
        try:
            maps[cache_key] = explain(predictor, data, chosen)
        except FishcoreError as exc:
            st.error(tr("No heat map: {error}", error=exc))
            return
        while len(maps) > 32:  # a session keeps the latest few only
            maps.pop(next(iter(maps)))
    result = maps[cache_key]
    st.image(overlay(result.image, result.heat, opacity), width="stretch")
    name = species_name(predictor, result.label)
    st.caption(
        tr(CAPTION) + " " + tr("This map: {species}, {probability}.", species=name, probability=pct(result.probability, 1))
    )


def species_name(predictor: Predictor, label: str) -> str:
    """A class's display name in the session's language, from the model's species cards (else the class name)."""
    from fishcore.store.species import display_name

    return display_name(predictor.card.species, label, language())


def species_card_panel(predictor: Predictor, label: str) -> None:
    """The species card of an answer: both names, the scientific name and the note in the session's language."""
    card = predictor.card.species.get(label)
    if not card:
        st.caption(tr("No species card for {label} yet: add one on the Models page.", label=label))
        return
    lang = language()
    other = "id" if lang == "en" else "en"
    names = " · ".join(n for n in (card.get(lang), card.get(other)) if n)
    scientific = f" · *{card['scientific']}*" if card.get("scientific") else ""
    note = card.get(f"note_{lang}") or card.get("note_en") or ""
    st.markdown(f"**{names or label}**{scientific}  \n{note}")


def slider_threshold(card: ModelCard) -> float:
    """The card's threshold on the slider's 0.01 steps, rounded up (never laxer than chosen)."""
    return math.ceil(round(card.threshold * 100, 6)) / 100


def promise_caption(card: ModelCard, threshold: float | None = None) -> str:
    """What a confidence threshold (default: the model's own) promises, from the photos the model never trained on."""
    p = Promise.from_card(card.promise)
    chosen = slider_threshold(card)
    threshold = chosen if threshold is None else threshold
    if p is None and card.training.stop_reason == "user":
        return tr(
            "Training was stopped before this model's threshold was chosen: its {threshold} is the fixed one and "
            "promises nothing. Train it to the end to have one chosen.",
            threshold=pct(card.threshold),
        )
    if p is None:
        return tr(
            "This model was saved before each model got its own threshold: its {threshold} is one number for every "
            "model and promises nothing. Train it again to have one chosen.",
            threshold=pct(card.threshold),
        )
    n, k = p.at(threshold)  # confident answers and the right ones among them: right answers still confident
    share = tr(
        "on {photos} photos it never trained on, {k} of {n} confident answers were right and {kept} of its {right} "
        "right answers were confident",
        photos=p.photos, k=k, n=n, kept=k, right=p.right,
    )  # fmt: skip
    if abs(threshold - chosen) < 1e-9:
        if p.backed:
            return tr(
                "Chosen for this model: at least {precision} of its confident answers are right ({level} sure; {share}).",
                precision=pct(p.precision), level=pct(p.level), share=share,
            )  # fmt: skip
        return tr(
            "The photos it never trained on are too few, or too alike (frames of a few videos), to promise "
            "{precision} of confident answers right: {share}. Add photos of more fish and retrain.",
            precision=pct(p.precision), share=share,
        )  # fmt: skip
    return tr("At {threshold}: {share}.", threshold=pct(threshold), share=share)
