"""Train: configure a run, start it as a background job, and watch it live."""

import contextlib
import dataclasses
import re
from datetime import datetime
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.config import PAPER_AUGMENT, AugmentConfig, DataConfig, TrainConfig
from fishcore.errors import ConfigError, FishcoreError
from fishcore.events import EventName
from fishcore.models.config import ModelConfig
from fishcore.store.model_files import read_card
from fishcore.training.jobs import FINAL_STATES, Job, JobSpec, start_job
from fishcore.training.run import TRAIN_SETTINGS
from pages._i18n import error_text, num, tr
from pages._shared import dataset_area, dataset_input, outcome_words, phase_word, promise_caption, workspace
from pages._state import newest_job, state, watched_job

PRECISION_NAMES = {"auto": "Auto", "bf16": "bfloat16 mixed precision", "fp32": "float32"}
SCHEDULE_NAMES = {"constant": "constant (the paper's)", "plateau": "halve on a plateau"}
BUDGETS = {60: "about 1 minute", 180: "about 3 minutes", 600: "about 10 minutes"}
MODE_NAMES = {
    "auto": "Automatic (recommended: compares the ways below on validation photos within the time budget)",
    "instant": "Instant (seconds: a linear classifier on the frozen network's features)",
    "fast": "Fast (cached features, the last layers fine-tuned)",
    "full": "Full (the paper's way: fresh augmentation every epoch)",
}
CHOICE_WORDS = {"precision": PRECISION_NAMES, "lr_schedule": SCHEDULE_NAMES}


def field_error(container, *fields: str) -> None:
    """The message of a rejected setting, shown beside its control."""
    error = state().train_error
    if error and error[0] in fields:
        container.error(tr("{reason} (you entered {value})", reason=error[1], value=repr(error[2])), icon=":material/error:")


def advanced_settings(container) -> dict:
    """One widget per setting that has a label on its Rule (fishcore.config): its help, limits and choices come from
    there, so the page accepts what the config accepts. The values, by setting name."""
    form = [s for s in TRAIN_SETTINGS.values() if s.rule.label]
    values = {}
    mode = TRAIN_SETTINGS["mode"]  # the way of training first, its choices spelled out
    values["mode"] = container.radio(
        tr(mode.rule.label), mode.rule.choices, mode.rule.choices.index(mode.default), lambda c: tr(MODE_NAMES[c]),
        key="setting_mode", help=tr(mode.rule.help),
    )  # fmt: skip
    field_error(container, "mode")
    columns = container.columns(3)
    for n, setting in enumerate(s for s in form if s.name != "mode"):
        rule, col, key = setting.rule, columns[n % 3], f"setting_{setting.name}"
        label, help_ = tr(rule.label), tr(rule.help)
        if rule.choices:
            words = CHOICE_WORDS.get(setting.name, {})
            values[setting.name] = col.selectbox(
                label, rule.choices, rule.choices.index(setting.default), lambda c, w=words: tr(w[c]) if c in w else c,
                key=key, help=help_,
            )  # fmt: skip
        elif rule.kind is bool:
            values[setting.name] = col.checkbox(label, setting.default, key=key, help=help_)
        else:
            whole = rule.kind is int
            step = rule.step or (1 if whole else 0.01)
            values[setting.name] = col.number_input(
                label,
                # An open end (a learning rate above 0) is left to the config, which says so beside the box.
                min_value=None if rule.lo is None or rule.lo_open else (int if whole else float)(rule.lo),
                max_value=None if rule.hi is None or rule.hi_open else (int if whole else float)(rule.hi),
                value=setting.default,
                step=int(step) if whole else float(step),
                format=None if whole or step >= 0.01 else "%.5f",
                placeholder=tr("automatic") if rule.optional else None,
                key=key,
                help=help_,
            )
        field_error(col, setting.name)
    return values


def configured(cls, values: dict, **extra):
    """A config from the form's values (those of its own settings) and ``extra``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names}, **extra)


ws = workspace()
st.title(tr("Train"))

# --- the job this page watches: the running one, else the one this session started, else the newest ---
job = watched_job(ws.jobs, state().train_job) or newest_job(ws.jobs)
running = job is not None and job.active

with st.expander(tr("New training run"), expanded=not running):
    root = dataset_input("train")
    c1, c2 = st.columns(2)
    area = dataset_area()
    mine = root and Path(root).parent.resolve() == area.root.resolve()
    name = c1.text_input(
        tr("Model name"),
        # A dataset from My photos names its model, so retraining it after adding species makes a new version.
        value=Path(root).name if mine else f"model-{datetime.now():%Y%m%d-%H%M}",
        help=tr(
            "Saved under the models folder. A name already in use saves a new version beside it (name-v2, ...): "
            "nothing is ever replaced."
        ),
    )
    budget = c2.select_slider(
        tr("Time budget"),
        options=list(BUDGETS),
        value=180,
        format_func=lambda b: tr(BUDGETS[b]),
        help=tr(
            "The most time the run spends looking for the best way to train on your photos. It stops sooner "
            "when a quick way already gets every validation photo right."
        ),
    )
    advanced = st.expander(tr("Advanced settings"), expanded=False)
    values = advanced_settings(advanced)
    augment = (state().augment_cfg or AugmentConfig())
    st.caption(
        (
            tr("Augmentation: the defaults (the paper's, plus mild colour jitter).")
            if augment == AugmentConfig()
            else tr("Augmentation: exactly the paper's.")
            if augment == PAPER_AUGMENT
            else tr("Augmentation: your settings from the lab.")
        )
        + " "
        + ", ".join(f"{k}={v}" for k, v in augment.__dict__.items())
    )
    st.page_link("pages/augment_page.py", label=tr("Change augmentation in the lab"), icon=":material/science:")
    start = st.button(tr("Start training"), type="primary", disabled=running)
    if start:
        if not re.fullmatch(r"[\w.-]+", name):
            st.error(tr("Use letters, digits, '-', '_' or '.' in the model name."))
        elif not root:
            st.error(tr("Choose a dataset folder first."))
        else:
            try:
                spec = JobSpec(
                    data_dir=root,
                    out_dir=str(ws.models / name),
                    data=configured(DataConfig, values),
                    model=configured(ModelConfig, values),
                    train=configured(TrainConfig, values, budget=float(budget), augment=augment),
                )
            except ConfigError as exc:  # shown beside its control after the rerun
                state().train_error = (exc.field, exc.reason, exc.value)
                st.rerun()
            del state().train_error
            try:
                job = start_job(ws.jobs, spec)
            except FishcoreError as exc:
                st.error(error_text(exc))
            else:
                state().train_job = job.id
                st.rerun()

if job is None:
    st.info(tr("No training run yet. Choose a dataset and press Start."))
    st.stop()


def curves(events: list[dict]) -> list[alt.Chart]:
    """Accuracy and loss per iteration, training and validation, like the paper's progress figure."""
    rows = []
    for e in events:
        if e["name"] == EventName.BATCH_END:
            rows.append({"iteration": e["iteration"], "series": "training", "accuracy": e["accuracy"], "loss": e["loss"]})
        elif e["name"] == EventName.VALIDATION:
            rows.append(
                {"iteration": e["iteration"], "series": "validation", "accuracy": e["val_accuracy"], "loss": e["val_loss"]}
            )
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    charts = []
    for metric in ("accuracy", "loss"):
        base = alt.Chart(frame).encode(
            x=alt.X("iteration:Q"),
            y=alt.Y(f"{metric}:Q", scale=alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Undefined),
            color=alt.Color("series:N", title=None, scale=alt.Scale(range=["#4c78a8", "#e45756"])),
            tooltip=["iteration", "series", alt.Tooltip(f"{metric}:Q", format=".4f")],
        )
        validation = base.transform_filter(alt.datum.series == "validation")
        charts.append((base.mark_line(opacity=0.6) + validation.mark_line(point=True)).properties(height=200))
    return charts


def monitor(job: Job) -> None:
    status = job.status()
    job_state = status.get("state", "starting")
    st.subheader(tr("Run {id}: {state}", id=job.id, state=tr(job_state)))
    done, total = status.get("done", 0), status.get("total", 0) or 1
    phase = phase_word(status.get("phase", ""))
    eta = status.get("eta")
    text = f"{phase}: {done}/{total}" + (" · " + tr("about {s} s left", s=num(eta)) if eta and job_state == "running" else "")
    st.progress(min(done / total, 1.0), text=text)
    # The stop buttons come right under the progress bar, before the tables and charts that grow while the job runs:
    # drawn at the same place at every refresh, they do not move while the user reaches for them.
    if job_state in ("starting", "running"):
        c1, c2 = st.columns(2)
        if c1.button(tr("Stop and keep the best model so far"), key=f"stop_keep_{job.id}"):
            job.request_stop(keep=True)
        if c2.button(tr("Stop and discard"), key=f"stop_discard_{job.id}"):
            job.request_stop(keep=False)
    elif job_state == "stopping":
        st.info(tr("Stopping..."))
    events = job.events()
    candidates = [e for e in events if e["name"] == EventName.CANDIDATE]
    if candidates:
        st.write(tr("**Ways of training tried so far**, scored on validation photos (the best one becomes the model):"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        tr("way"): e.get("candidate"),
                        tr("validation macro-F1"): e.get("val_macro_f1"),
                        tr("after (s)"): round(e["elapsed"]),
                    }
                    for e in candidates
                ]
            ),
            hide_index=True,
            column_config={
                tr("validation macro-F1"): st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")
            },
        )
    for chart in curves(events):
        st.altair_chart(chart, width="stretch")
    if job_state in FINAL_STATES:
        (st.error if job_state == "failed" else st.success)(outcome_words(status))
        if job_state == "failed":
            log = job.dir / "output.log"
            if log.is_file() and log.stat().st_size:
                with st.expander(tr("The training process's log")):
                    st.code(log.read_text(errors="replace")[-4000:], language=None)
            if st.button(tr("Start again with the same settings"), key=f"restart_{job.id}", type="primary"):
                try:
                    state().train_job = start_job(ws.jobs, job.spec).id
                except FishcoreError as exc:
                    st.error(error_text(exc))
                else:
                    st.rerun()
        if status.get("test"):
            test = status["test"]
            st.write(
                tr("{mode} mode", mode=status.get("mode", "?").capitalize())
                + (" (" + tr("chose: {recipe}", recipe=status["recipe"]) + ")" if status.get("recipe") else "")
                + f", {tr(PRECISION_NAMES.get(status.get('precision'), 'float32'))}. "
                + tr(
                    "Test split: accuracy {accuracy}, macro-F1 {f1} on {n} photos (training {s} s).",
                    accuracy=num(test["accuracy"], 3),
                    f1=num(test["macro_f1"], 3),
                    n=test["n"],
                    s=num(status.get("seconds", 0)),
                )
            )
        if status.get("model_dir"):
            saved = Path(status["model_dir"])
            state().evaluate_model = status["model_dir"]
            st.write(tr("Saved to `{path}`.", path=saved))
            with contextlib.suppress(FishcoreError):  # a folder removed since: the line above says where it was
                st.caption(promise_caption(read_card(saved)))
            c1, c2 = st.columns(2)
            current = ws.active_model()
            if saved.is_dir() and (current is None or current.resolve() != saved.resolve()):
                if c1.button(tr("Use {name} for predictions", name=saved.name), key=f"activate_{job.id}", type="primary"):
                    ws.set_active_model(saved, why="Train page")
                    st.rerun()
            elif saved.is_dir():
                c1.success(tr("{name} is the active model.", name=saved.name))
            c2.page_link("pages/evaluate_page.py", label=tr("Evaluate this model"), icon=":material/analytics:")
        if running:
            st.rerun()  # the whole page: re-enable Start and stop polling


# Poll once a second while the job runs; a finished job is drawn once.
st.fragment(run_every=1.0 if running else None)(monitor)(job)
