"""Catch log: every answer recorded, with its photo; confirm or correct in place; fish per species per day,
the model's accuracy on the entries people confirmed, and the filtered entries as CSV."""

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.catchlog import NOT_SURE, LogFilter, accuracy_by_week, counted_as, counts_per_day, to_csv
from fishcore.store.catchlog.kept_back import teachable
from fishcore.store.catchlog.queue import review_queue
from fishcore.store.model_files import family_of, read_card
from fishcore.training.jobs import active_job
from pages._catch import (
    VERDICT_WORDS,
    catch_log,
    set_text,
    species_known,
    start_teaching,
    teaching_outcome,
    where_kept,
    word_buttons,
    word_text,
)
from pages._i18n import error_text, num, pct, tr, when
from pages._shared import dataset_area, outcome_words, phase_word, workspace
from pages._state import state

PAGE = 20  # entries per page
# What an entry is to training (fishcore.store.catchlog.kept_back.used_as), in the app's words.
USED_AS_WORDS = {"field test": "field test set", "taught": "taught (training data)", "not taught yet": "not taught yet"}
ANY = "\0any"

st.title(tr("Catch log"))
log = catch_log()
st.caption(
    tr("Every answer Predict gives is recorded here with its photo.")
    + " "
    + where_kept(log)
    + " "
    + tr("Recording can be turned off in Predict's settings.")
)
try:
    written = log.flush_spool()
    waiting = log.pending()
except FishcoreError as exc:
    written, waiting = 0, 0
    st.error(error_text(exc))
if written:
    st.success(tr("{n} entries that waited for the database were written to it.", n=written))
if waiting:
    st.warning(
        tr("{n} entries wait on this computer for the shared catch log; they are written when it is back.", n=waiting)
    )
try:
    everything = log.entries()
except FishcoreError as exc:
    st.error(error_text(exc))
    st.stop()
if not everything:
    st.info(tr("Nothing recorded yet: answers given on the Predict page appear here."))
    st.stop()

# --- the review queue and teaching -----------------------------------------------------------------
queue = review_queue(everything)
to_teach, held_back = teachable(everything)
st.subheader(tr("To confirm"))
head, how = st.columns([4, 1])
head.caption(
    tr(
        "The answers the model was least sure of come first; several photos of one fish are one item. On a desktop, "
        "the keys 1 (Right) and 3 (Not a fish) answer the first item."
    )
)
with how.popover(tr("Why this order?"), icon=":material/help:"):
    st.markdown(
        tr(
            "Your word teaches the model most where it was unsure, and where a photo looks unlike the photos it "
            "learned from. Each answer gets a score for both, the unsure part counting twice as much, and the highest "
            "score comes first. Photos that are almost the same (frames of one fish) are shown once, and your word "
            "counts for all of them."
        )
    )
if not queue:
    st.success(tr("Every entry has a word: nothing to confirm."))
else:
    item = queue[0]
    e = item.lead
    with st.container(border=True):
        left, right = st.columns([1, 2])
        try:
            left.image(str(log.photo_path(e.photo_sha256)), width="stretch")
        except FishcoreError as exc:
            left.caption(error_text(exc))
        right.markdown(f"### {e.label} · {pct(e.confidence)}" + (f"  \n{set_text(e)}" if set_text(e) else ""))
        right.caption(
            tr(
                "{left} to confirm · {when} · {place}",
                left=num(len(queue)),
                when=when(e.created_at.isoformat()),
                place=e.place or tr("no place"),
            )
            + (" · " + tr("with {n} near-copies (the word counts for all)", n=len(item.copies)) if item.copies else "")
        )
        with right:
            choices = sorted({x.label for x in everything} | set(species_known(everything)))
            word_buttons(log, e, choices, key=f"queue_{e.id}", copies=item.copies, keys=True)

with st.container(border=True):
    st.markdown(
        "**"
        + tr("Teach the model with {n} confirmed photos", n=len(to_teach))
        + "**  \n"
        + tr(
            "{held} confirmed photos are kept back as the field test set: no version is taught with them, and "
            "the Models page shows each version's accuracy on them.",
            held=len(held_back),
        )
    )
    area = dataset_area()
    active = workspace().active_model()
    default_name = (family_of(active.name)[0] + "-field") if active else "field-photos"
    c1, c2 = st.columns(2)
    names = area.names()
    dataset = c1.text_input(tr("Into the My photos dataset"), value=default_name, key="teach_dataset", max_chars=100)
    budget = c2.select_slider(
        tr("Time budget"), [60, 180, 600], 180, key="teach_budget", format_func=lambda s: tr("{n} minutes", n=s // 60)
    )
    start_from = None
    if dataset.strip() and dataset.strip() not in names and active is not None:
        active_card = read_card(active)
        card_root = active_card.data_root
        if (
            card_root is not None
            and card_root.is_dir()
            and st.checkbox(
                tr("Start it from the photos the active model was trained on ({n} species)", n=len(active_card.classes)),
                value=True,
                key="teach_start_from",
            )
        ):
            start_from = card_root
    st.caption(
        tr(
            "The new version goes to the phones only when it is at least as good as the one they have on the photos "
            "both can be judged on; otherwise they keep theirs, and this page says why."
        )
    )
    if st.button(tr("Teach and send to the phones"), type="primary", disabled=not to_teach, icon=":material/school:"):
        try:
            lesson = start_teaching(log, area, dataset, start_from, float(budget))
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            st.success(
                tr(
                    "{n} photos added to {dataset}; the model is learning them (a few minutes).",
                    n=len(lesson.plan.add),
                    dataset=lesson.dataset_dir.name,
                )
            )


def teaching_panel(job_id: str, polling: bool) -> None:
    """The teaching job this session started: its progress while it runs, then what it learned and decided."""
    from fishcore.training.jobs import Job

    job = Job(workspace().jobs / job_id)
    if not job.dir.is_dir():
        return
    status = job.status()
    running = status.get("state") in ("starting", "running", "stopping")
    if polling and not running:
        st.rerun()  # the whole page: the outcome, the log's new state, and no more polling
    if running:
        done, total = status.get("done") or 0, status.get("total") or 0
        st.progress(min(1.0, done / total) if total else 0.0, text=tr("The model is learning your photos: {phase}",
                                                                      phase=phase_word(status.get("phase") or "")))  # fmt: skip
        st.page_link("pages/train_page.py", label=tr("Follow it on the Train page"), icon=":material/model_training:")
        return
    if status.get("state") == "failed":
        st.error(outcome_words(status))
        return
    teaching_outcome(status)


if state().teach_job:
    job_dir = workspace().jobs / state().teach_job
    running = job_dir.is_dir() and active_job(workspace().jobs) is not None
    st.fragment(run_every=2.0 if running else None)(teaching_panel)(state().teach_job, running)

with st.expander(tr("Filters"), expanded=False, icon=":material/filter_list:"):
    first_day = min(e.created_at for e in everything).date()
    today = datetime.now(UTC).date()
    c1, c2, c3 = st.columns(3)
    days = c1.date_input(tr("Dates"), (first_day, today), min_value=first_day - timedelta(days=1), key="log_days")
    species_seen = sorted({s for e in everything for s in (e.label, e.true_species) if s})
    species = c2.selectbox(
        tr("Species"), [ANY, *species_seen], key="log_species", format_func=lambda s: tr("all") if s == ANY else s
    )
    verdict = c3.selectbox(
        tr("Verdict"),
        [ANY, *VERDICT_WORDS],
        key="log_verdict",
        format_func=lambda v: tr("all") if v == ANY else tr(VERDICT_WORDS[v]),
    )
    c4, c5, c6 = st.columns(3)
    confirmed = c4.selectbox(
        tr("The user's word"),
        [None, True, False],
        key="log_confirmed",
        format_func=lambda c: tr("all") if c is None else tr("given") if c else tr("not yet"),
    )
    places = sorted({e.place for e in everything if e.place})
    place = c5.selectbox(tr("Place"), [ANY, *places], key="log_place", format_func=lambda p: tr("all") if p == ANY else p)
    models = sorted({e.model_name for e in everything})
    model = c6.selectbox(tr("Model"), [ANY, *models], key="log_model", format_func=lambda m: tr("all") if m == ANY else m)

since, until = (days[0], days[-1]) if isinstance(days, (tuple, list)) and days else (None, None)
chosen = LogFilter(
    since=since,
    until=until,
    species=None if species == ANY else species,
    verdict=None if verdict == ANY else verdict,
    confirmed=confirmed,
    place=None if place == ANY else place,
    model=None if model == ANY else model,
)
shown = log.entries(chosen)
confirmed_n = sum(e.word is not None for e in shown)
c1, c2, c3 = st.columns(3)
c1.metric(tr("Entries"), num(len(shown)))
c2.metric(tr("Fish counted"), num(sum(e.count for e in shown if counted_as(e) is not None)))
c3.metric(tr("With the user's word"), num(confirmed_n))

counts = pd.DataFrame(counts_per_day(shown))
if not counts.empty:
    counts["species"] = counts["species"].map(lambda s: tr("not sure yet") if s == NOT_SURE else s)
    st.subheader(tr("Fish counted per species per day"))
    st.altair_chart(
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("day:O", title=tr("day (UTC)")),
            y=alt.Y("fish:Q", title=tr("fish")),
            color=alt.Color("species:N", title=tr("species")),
            tooltip=[
                alt.Tooltip("day:O", title=tr("day (UTC)")),
                alt.Tooltip("species:N", title=tr("species")),
                alt.Tooltip("fish:Q", title=tr("fish")),
            ],
        )
        .properties(height=260),
        width="stretch",
    )
    st.caption(
        tr(
            "Each entry counts its fish under the species the user gave, else the model's answer when it was "
            'confident, else under "not sure yet"; photos of no fish are left out.'
        )
    )
weeks = pd.DataFrame(accuracy_by_week(shown))
if not weeks.empty:
    weeks["entries"] = weeks["entries"].map(lambda part: tr(USED_AS_WORDS[part]))
if not weeks.empty:
    st.subheader(tr("How often each model was right on your photos"))
    st.altair_chart(
        alt.Chart(weeks)
        .mark_line(point=True)
        .encode(
            x=alt.X("week:O", title=tr("week")),
            y=alt.Y("accuracy:Q", title=tr("right"), scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.Color("model:N", title=tr("model")),
            shape=alt.Shape("entries:N", title=tr("entries")),
            strokeDash=alt.StrokeDash("entries:N", legend=None),
            tooltip=[
                alt.Tooltip("model:N", title=tr("model")),
                alt.Tooltip("entries:N", title=tr("entries")),
                alt.Tooltip("week:O", title=tr("week")),
                alt.Tooltip("right:Q", title=tr("right")),
                alt.Tooltip("confirmed:Q", title=tr("confirmed")),
            ],
        )
        .properties(height=240),
        width="stretch",
    )
    st.caption(
        tr(
            "Measured only on the entries someone confirmed or corrected: the model's accuracy on your own photos. "
            "Each line is one kind of entry: the field test set (never taught to any version), photos taught to a "
            "version (its training data: expect it to be right on them), and confirmed photos not taught yet."
        )
    )

st.download_button(tr("Download these entries (CSV)"), to_csv(shown), "catch-log.csv", "text/csv", icon=":material/download:")

st.subheader(tr("Entries"))
pages = max(1, -(-len(shown) // PAGE))
number = st.number_input(tr("Page"), 1, pages, 1, key="log_page") if pages > 1 else 1
classes = sorted({e.label for e in everything} | {e.true_species for e in everything if e.true_species})
for e in shown[(number - 1) * PAGE : number * PAGE]:
    with st.container(border=True):
        left, right = st.columns([1, 4])
        try:
            left.image(str(log.photo_path(e.photo_sha256)), width="stretch")
        except FishcoreError as exc:
            left.caption(error_text(exc))
        right.markdown(
            f"**{e.label}** · {pct(e.confidence)} · {tr(VERDICT_WORDS[e.verdict])}"
            + (f" · {set_text(e)}" if set_text(e) else "")
            + "  \n"
            + tr(
                "{when} · {place} · model {model} · {count} fish",
                when=when(e.created_at.isoformat()),
                place=e.place or tr("no place"),
                model=e.model_name,
                count=num(e.count),
            )
            + (f" · {num(e.weight_kg, 2)} kg" if e.weight_kg else "")
            + (" · " + tr("sent from {device}", device=e.device) if e.device else "")
        )
        right.caption(word_text(e.word, e.true_species) + (f" ({e.word_by}, {when(e.word_at.isoformat())})" if e.word else ""))
        with right:
            word_buttons(log, e, classes, key=f"log_{e.id}")
