"""The catch log's widgets that Predict and the Catch log page share: the user's word under an answer."""

from __future__ import annotations

import secrets

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.inference.openset import CONFIDENT
from fishcore.store.catchlog import CatchLog, Entry
from pages._i18n import error_text, pct, tr
from pages._state import state

NEW_SPECIES = "\0new"
# The user's word on an answer, as the app says it.
WORD_LABELS = {"right": "Right", "wrong": "Wrong, it is {species}", "not_fish": "Not a fish"}
VERDICT_WORDS = {"confident": "confident", "uncertain": "not sure", "not_a_fish": "not a fish"}


def catch_log() -> CatchLog:
    """This workspace's catch log (a light handle: the database engine underneath is shared per process)."""
    return CatchLog()


def where_kept(log: CatchLog) -> str:
    """Where the answers are kept, in a fisherman's words (the folder or database address is for the docs, not here)."""
    if log.backend == "postgresql":
        return tr("Recorded answers and their photos are kept in the office's shared catch log.")
    return tr("Recorded answers and their photos are kept on this computer.")


def who() -> str:
    """Who gives a word: the name or device label typed on Predict, else a label for this browser session."""
    if not state().catch_who:
        state().catch_who = f"session {secrets.token_hex(2)}"
    return state().catch_who


def word_text(word: str | None, species: str | None) -> str:
    if word is None:
        return tr("No word yet")
    return tr(WORD_LABELS[word], species=species or "")


def word_buttons(
    log: CatchLog, entry: Entry, classes: list[str], key: str, name=str, copies: list[Entry] = (), keys: bool = False
) -> None:
    """Under an answer: one tap for Right, Wrong (a known species or a new name) or Not a fish; changeable later;
    and how many fish the photo counts, with their weight.

    ``name`` words a class name (the species card's name in the session's language). The word also goes to
    ``copies``, the entry's near-copies (the review queue's item). ``keys``: keyboard shortcuts on a desktop,
    1 for Right and 3 for Not a fish (for the one item of the page that has them: the queue's).
    """
    entry_id, current = entry.id, entry.word
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    word = None
    if c1.button(
        tr("Right"),
        key=f"{key}_right",
        width="stretch",
        type="primary" if current == "right" else "secondary",
        icon=":material/check:",
        shortcut="1" if keys else None,
    ):
        word = ("right", None)
    wrong = tr(WORD_LABELS["wrong"], species=name(entry.true_species)) if current == "wrong" else tr("Wrong, it is...")
    with c2.popover(wrong, width="stretch", icon=":material/edit:"):
        options = [*classes, NEW_SPECIES]
        pick = st.selectbox(
            tr("It is"),
            options,
            key=f"{key}_pick",
            format_func=lambda c: tr("another species (type its name)") if c == NEW_SPECIES else name(c),
        )
        typed = st.text_input(tr("Species name"), key=f"{key}_typed", max_chars=100) if pick == NEW_SPECIES else ""
        if st.button(tr("Save"), key=f"{key}_save", type="primary"):
            word = ("wrong", typed if pick == NEW_SPECIES else pick)
    if c3.button(
        tr("Not a fish"),
        key=f"{key}_notfish",
        width="stretch",
        type="primary" if current == "not_fish" else "secondary",
        icon=":material/block:",
        shortcut="3" if keys else None,
    ):
        word = ("not_fish", None)
    with c4.popover(f"× {entry.count}", width="stretch", help=tr("How many fish this photo counts, and their weight")):
        count = st.number_input(tr("Fish in this photo"), 1, 100_000, entry.count, key=f"{key}_count")
        weight = st.text_input(
            tr("Weight in kg (optional)"),
            "" if entry.weight_kg is None else f"{entry.weight_kg:g}",
            key=f"{key}_weight",
            max_chars=20,
        )
        if st.button(tr("Save"), key=f"{key}_amount"):
            try:
                log.set_amount(entry_id, count, weight)
            except FishcoreError as exc:
                st.error(error_text(exc))
            else:
                st.rerun()
    if word is not None:
        try:
            for target in [entry, *copies]:
                log.set_word(target.id, word[0], word[1], who=who())
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            st.toast(tr("Saved: {word}", word=word_text(*word)))
            st.rerun()


def species_known(entries) -> list[str]:
    """Every species a user has named in the log (corrections included), for the "it is" choices."""
    return sorted({e.true_species for e in entries if e.true_species})


def start_teaching(log: CatchLog, area, dataset: str, start_from, budget: float):
    """Teach the confirmed photos and start the training job (fishcore.training.field.teach_and_train); the lesson.
    This session's Train page then watches the job."""
    from fishcore.training.field import teach_and_train
    from pages._shared import workspace

    ws = workspace()
    with st.spinner(tr("Copying the photos the model was trained on...") if start_from is not None else tr("Teaching...")):
        lesson, job = teach_and_train(log, area, ws.jobs, ws.models, dataset, start_from, budget)
    state().train_job = job.id
    return lesson


def set_text(e: Entry) -> str:
    """ "one of: A, B (90 %)" for an answer that was not confident and had a prediction set, else nothing."""
    if e.verdict == CONFIDENT or len(e.candidates) < 2 or e.set_coverage is None:
        return ""
    return tr("one of: {species} ({coverage})", species=", ".join(s for s, _ in e.candidates), coverage=pct(e.set_coverage))
