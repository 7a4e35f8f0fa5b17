"""Compare: the paper's comparison on your own photos, as a background job; saved comparisons reopen."""

import json
import re
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.config import DataConfig
from fishcore.errors import FishcoreError
from fishcore.store.samples import sample_set, samples_root
from fishcore.training.compare import RESULTS_FILE, Comparison, read_comparison
from fishcore.training.jobs import FINAL_STATES, Job, JobSpec, active_job, start_job
from pages._i18n import error_text, num, tr
from pages._shared import dataset_input, phase_word, workspace
from pages._state import state, watched_job

EXAMPLE_NAME = "example-sample-photos"
# The ready example: the 20 shipped F4K photos (4 species), 10 s of training per network; a minute or two here.
EXAMPLE_SECONDS = 10.0
SECONDS_PER_NETWORK = {30: "30 seconds", 60: "1 minute", 90: "1.5 minutes", 180: "3 minutes"}
# The table's columns (English in the CSV download, the session's language on screen).
COLUMNS = {
    "way": "way",
    "what": "what",
    "test accuracy": "test accuracy",
    "macro-F1": "macro-F1",
    "training (s)": "training (s)",
    "features (s)": "of which features (s)",
    "trained parameters": "trained parameters",
    "all parameters": "all parameters",
    "ms per photo": "ms per photo",
    "skipped because": "skipped because",
}

ws = workspace()
st.title(tr("Compare ways of training"))
st.write(
    tr(
        "Trains several networks and one classical method on the **same** photos and tests them on the **same** "
        "held-out photos, as the paper's architecture comparison does: what the residual head adds, what ImageNet "
        "pretraining buys against random weights, and how deep to fine-tune."
    )
)

job = watched_job(ws.comparison_jobs, state().compare_job)
running = job is not None and job.active

with st.expander(tr("New comparison"), expanded=not running):
    root = dataset_input("compare")
    c1, c2, c3 = st.columns(3)
    name = c1.text_input(tr("Name"), value="comparison", key="compare_name")
    seconds = c2.select_slider(
        tr("Training time per network"),
        options=list(SECONDS_PER_NETWORK),
        value=30,
        format_func=lambda s: tr(SECONDS_PER_NETWORK[s]),
        help=tr(
            "Every network gets the same training time after its features are computed (it stops sooner when "
            "validation stops improving). The features come on top: on 1,800 photos and 2 cores the whole "
            "comparison took about 11 minutes at 30 seconds, 13.5 at 1 minute."
        ),
    )
    seed = c3.number_input(tr("Split seed"), 0, 2**31 - 1, 0, help=tr("Which random split of the photos to use."))
    group = st.text_input(
        tr("Keep together (optional)"),
        value="",
        key="compare_group",
        help=tr(
            "A pattern on file names: photos whose names give the same first group stay on one side of the split "
            "(video frames of one fish, e.g. {example}).",
            example=r"fish_(\d+)_",
        ),
    )
    b1, b2 = st.columns(2)
    start = b1.button(tr("Start comparison"), type="primary", disabled=running)
    example = b2.button(
        tr("Run the example on the sample photos"),
        disabled=running or not sample_set("f4k").is_dir(),
        help=tr(
            "About a minute or two: the 20 Fish4Knowledge photos shipped with fishcore, 10 seconds of training per "
            "network. It shows how the comparison works; with so few photos its numbers are not a result."
        ),
    )
    if example:
        start, root, name, seconds, seed, group = True, str(sample_set("f4k")), EXAMPLE_NAME, EXAMPLE_SECONDS, 0, r"fish_(\d+)_"
    if start:
        if not re.fullmatch(r"[\w.-]+", name):
            st.error(tr("Use letters, digits, '-', '_' or '.' in the name."))
        elif not root:
            st.error(tr("Choose a dataset folder first."))
        elif active_job(ws.jobs) is not None:
            st.error(tr("A training run is using the processor; start the comparison when it has finished."))
        else:
            try:
                spec = JobSpec(
                    data_dir=root,
                    out_dir=str(ws.comparisons / name),
                    data=DataConfig(seed=int(seed), group_pattern=group.strip() or None),
                    seconds_per_network=float(seconds),
                    kind="compare",
                )
                job = start_job(ws.comparison_jobs, spec)
            except FishcoreError as exc:
                st.error(error_text(exc))
            else:
                state().compare_job = job.id
                state().compare_open = name
                st.rerun()


def table(result: Comparison, words=tr) -> pd.DataFrame:
    """One row per way of training; ``words`` renders the row names (tr on screen, str for the CSV)."""
    return pd.DataFrame(
        [
            {
                "way": words(r.name),
                "what": words(r.what),
                "test accuracy": r.accuracy,
                "macro-F1": r.macro_f1,
                "training (s)": r.train_seconds,
                "features (s)": r.feature_seconds,
                "trained parameters": r.trained_params,
                "all parameters": r.total_params,
                "ms per photo": r.latency_ms,
                "skipped because": r.skipped or None,
            }
            for r in result.rows
        ]
    )


def show(result: Comparison, folder) -> None:
    frame = table(result)
    measured = frame[frame["skipped because"].isna()]
    if Path(result.data_dir).resolve().is_relative_to(samples_root().resolve()):
        st.warning(
            tr(
                "A demonstration of how the comparison works, on the few sample photos shipped with fishcore: with a "
                "handful of test photos one photo moves accuracy by tens of points, so these numbers are not a result. "
                "Run it on your own photos for one."
            ),
            icon=":material/science:",
        )
    st.caption(
        tr(
            "{photos} test photos of {species} species from `{folder}`, split seed {seed}; each network trained for "
            "at most {seconds} s on {processor}.",
            photos=num(result.test_photos),
            species=len(result.classes),
            folder=result.data_dir,
            seed=result.seed,
            seconds=num(result.seconds_per_row),
            processor=result.processor,
        )
        + ("" if result.finished else " " + tr("Not finished: the rows so far."))
    )
    paper = tr("residual head (paper)")
    if not measured.empty:
        bars = (
            alt.Chart(measured)
            .mark_bar()
            .encode(
                x=alt.X("test accuracy:Q", title=tr("test accuracy"), scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                y=alt.Y("way:N", sort="-x", title=None),
                color=alt.condition(alt.datum.way == paper, alt.value("#e45756"), alt.value("#4c78a8")),
                tooltip=[
                    alt.Tooltip("way", title=tr("way")),
                    alt.Tooltip("what", title=tr("what")),
                    alt.Tooltip("test accuracy:Q", title=tr("test accuracy"), format=".1%"),
                    alt.Tooltip("macro-F1:Q", title=tr("macro-F1"), format=".3f"),
                ],
            )
            .properties(height=32 * len(measured) + 30)
        )
        st.altair_chart(bars, width="stretch")
        st.caption(
            tr(
                "Test accuracy of each way, on photos none of them trained on (like the paper's Figure 11). "
                "The red bar is the paper's model: pretrained MobileNetV2 with its residual head."
            )
        )
        points = (
            alt.Chart(measured)
            .mark_circle(size=120)
            .encode(
                x=alt.X("training (s):Q", title=tr("training time (s)")),
                y=alt.Y("test accuracy:Q", title=tr("test accuracy"), scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                color=alt.Color("way:N", title=None),
                tooltip=[
                    alt.Tooltip("way", title=tr("way")),
                    alt.Tooltip("test accuracy:Q", title=tr("test accuracy"), format=".1%"),
                    alt.Tooltip("training (s)", title=tr("training (s)")),
                ],
            )
        )
        labels = points.mark_text(align="left", dx=8).encode(text="way:N")
        st.altair_chart((points + labels).properties(height=320), width="stretch")
        st.caption(
            tr(
                "Accuracy against training time (like the paper's Figure 12): up and to the left is better. "
                "Pretrained networks reach high accuracy in seconds; the one from random weights has the same time "
                "and does far worse: that gap is what transfer learning buys."
            )
        )
    shown = {column: tr(words) for column, words in COLUMNS.items()}
    st.dataframe(
        frame.rename(columns=shown),
        hide_index=True,
        width="stretch",
        column_config={
            shown["test accuracy"]: st.column_config.NumberColumn(format="%.3f"),
            shown["macro-F1"]: st.column_config.NumberColumn(format="%.3f"),
        },
    )
    for r in result.rows:
        if r.features_from:
            st.caption(
                tr(
                    "{row} reused the features of {first} (the same frozen layers, computed once); its seconds include "
                    "what computing them cost.",
                    row=tr(r.name),
                    first=tr(r.features_from),
                )
            )
    c1, c2 = st.columns(2)
    c1.download_button(tr("Table (CSV)"), table(result, str).to_csv(index=False), f"{folder.name}.csv", "text/csv")
    c2.download_button(tr("Results (JSON)"), json.dumps(result.to_dict(), indent=1), f"{folder.name}.json", "application/json")


def monitor(job: Job) -> None:
    status = job.status()
    job_state = status.get("state", "starting")
    done, total = status.get("done", 0), status.get("total", 0) or 1
    phase = phase_word(status.get("phase", ""))
    st.subheader(tr("Comparison {id}: {state}", id=job.id, state=tr(job_state)))
    st.progress(min(done / total, 1.0), text=f"{phase}: {done}/{total}")
    folder = Path(job.spec.out_dir)
    if job_state not in FINAL_STATES and (folder / RESULTS_FILE).is_file():  # a finished one is shown below
        try:
            show(read_comparison(folder), folder)
        except FishcoreError as exc:
            st.error(error_text(exc))
    if job_state in ("starting", "running") and st.button(tr("Stop after the current row"), key=f"stop_{job.id}"):
        job.request_stop(keep=True)
    if job_state == "failed":
        error = status.get("error", {})
        st.error(tr("The comparison failed: {error}", error=error.get("text") or error.get("code") or tr("unknown error")))
    if job_state in FINAL_STATES and running:
        st.rerun()


if job is not None and (running or state().compare_job == job.id):
    st.fragment(run_every=2.0 if running else None)(monitor)(job)

saved = sorted(p for p in ws.comparisons.glob("*") if (p / RESULTS_FILE).is_file()) if ws.comparisons.is_dir() else []
st.subheader(tr("Saved comparisons"))
if not saved:
    st.info(tr("None yet. Choose a dataset and press Start comparison (or run `./run.sh fishcore compare DATA --out DIR`)."))
    st.stop()
names = [p.name for p in saved]
default = state().compare_open
pick = st.selectbox(tr("Open"), names, index=names.index(default) if default in names else 0, key="compare_pick")
folder = ws.comparisons / pick
try:
    show(read_comparison(folder), folder)
except FishcoreError as exc:
    st.error(error_text(exc))
