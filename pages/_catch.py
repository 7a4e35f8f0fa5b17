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


def start_teaching(log: CatchLog, area, dataset: str, start_from, budget: float, activate: bool = True):
    """Teach the confirmed photos and start the training job (fishcore.training.teaching.teach_and_train); the lesson.
    With ``activate`` the new version goes to the phones when it is at least as good as the active one. This
    session's Catch log and Train pages then watch the job."""
    from fishcore.training.teaching import teach_and_train
    from pages._shared import workspace

    ws = workspace()
    with st.spinner(tr("Copying the photos the model was trained on...") if start_from is not None else tr("Teaching...")):
        lesson, job = teach_and_train(log, area, ws.jobs, ws.models, dataset, start_from, budget, activate=activate,
                                      active=ws.active_model())  # fmt: skip
    state().train_job = job.id
    state().teach_job = job.id
    return lesson


# Why a version taught from the field went to the phones or not (the code of a fishcore.training.versions.Decision).
DECISION_WORDS = {
    "better": "It is at least as good as {old} on the photos both can be judged on, and its promise is as well backed.",
    "no_active": "It is the first model of this station.",
    "same_model": "It is already the active model.",
    "worse_kept_back": "{old} stays: on your kept-back photos the new version was right less often.",
    "worse_heldout": "{old} stays: on the held-out photos both can be judged on the new version was right less often.",
    "promise": "{old} stays: its confident answers are backed by its held-out photos, the new version's are not yet.",
    "nothing_shared": "{old} stays: no photos can judge both, and the new version's confident answers are not backed yet.",
    "error": "The new version could not be compared with the active one: {detail}",
}


def teaching_outcome(status: dict) -> None:
    """What a finished teaching job learned and decided: photos and species (new ones by name), the score before and
    after on the user's kept-back photos, and whether the phones get the new version, with the reason."""
    from pathlib import Path

    d = status.get("decision") or {}
    if not d:
        return
    new = Path(d.get("new") or status.get("model_dir") or "").name
    old = Path(d["old"]).name if d.get("old") else ""
    lines = []
    if d.get("species"):
        added = d.get("new_species") or []
        lines.append(tr("Learned from {n} of your photos: {k} species.", n=d.get("taught", 0), k=len(d["species"]))
                     + (" " + tr("New: {names}.", names=", ".join(added)) if added and old else ""))  # fmt: skip
    fn, fo = d.get("kept_back_new") or {}, d.get("kept_back_old") or {}
    if fn.get("total"):
        lines.append(tr("On your kept-back photos: right on {before} of {n} before, {after} now.",
                        before=fo.get("right", 0), after=fn["right"], n=fn["total"]))  # fmt: skip
    else:
        lines.append(tr("None of your kept-back photos can judge both versions yet."))
    hn, ho = d.get("heldout_new") or {}, d.get("heldout_old") or {}
    if hn.get("total"):
        lines.append(tr("On held-out photos: right on {before} of {n} before, {after} now.",
                        before=ho.get("right", 0), after=hn["right"], n=hn["total"]))  # fmt: skip
    why = tr(DECISION_WORDS.get(d.get("code"), DECISION_WORDS["error"]), old=old, detail=d.get("sentence", ""))
    if d.get("activated"):
        st.success(tr("{name} now goes to every phone at its next sync.", name=new) + " " + why, icon=":material/send_to_mobile:")
    elif d.get("activate"):
        st.info(tr("{name} is better but was not made active: make it active on the Models page.", name=new) + " " + why)
    else:
        st.warning(tr("The phones keep {old}.", old=old) + " " + why)
    st.markdown("  \n".join(lines))


def set_text(e: Entry) -> str:
    """ "one of: A, B (90 %)" for an answer that was not confident and had a prediction set, else nothing."""
    if e.verdict == CONFIDENT or len(e.candidates) < 2 or e.set_coverage is None:
        return ""
    return tr("one of: {species} ({coverage})", species=", ".join(s for s, _ in e.candidates), coverage=pct(e.set_coverage))
