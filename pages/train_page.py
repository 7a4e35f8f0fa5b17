"""Train: configure a run, start it as a background job, and watch it live."""

import contextlib
import re
from datetime import datetime
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.config import PAPER_AUGMENT, AugmentConfig, DataConfig, ModelConfig, TrainConfig
from fishcore.errors import ConfigError, FishcoreError
from fishcore.events import EventName
from fishcore.models.backbones import BACKBONES
from fishcore.store.model_files import read_card
from fishcore.training.jobs import FINAL_STATES, Job, JobSpec, active_job, list_jobs, start_job
from pages._i18n import error_text, num, tr
from pages._shared import dataset_area, dataset_input, outcome_words, phase_word, promise_caption, workspace

PRECISION_NAMES = {"auto": "Auto", "bf16": "bfloat16 mixed precision", "fp32": "float32"}
BUDGETS = {60: "about 1 minute", 180: "about 3 minutes", 600: "about 10 minutes"}
MODE_NAMES = {
    "auto": "Automatic (recommended: compares the ways below on validation photos within the time budget)",
    "instant": "Instant (seconds: a linear classifier on the frozen network's features)",
    "fast": "Fast (cached features, the last layers fine-tuned)",
    "full": "Full (the paper's way: fresh augmentation every epoch)",
}


def field_error(container, *fields: str) -> None:
    """The message of a rejected setting, shown beside its control."""
    error = st.session_state.get("train_error")
    if error and error[0] in fields:
        container.error(tr("{reason} (you entered {value})", reason=error[1], value=repr(error[2])), icon=":material/error:")


ws = workspace()
st.title(tr("Train"))

# --- the job this page watches: the running one, else the one this session started, else the newest ---
job = active_job(ws.jobs)
if job is None and st.session_state.get("job_id"):
    candidate = Job(ws.jobs / st.session_state["job_id"])
    job = candidate if candidate.dir.is_dir() else None
if job is None:
    jobs = list_jobs(ws.jobs)
    job = jobs[0] if jobs else None
running = job is not None and job.active

with st.expander(tr("New training run"), expanded=not running):
    m, t = ModelConfig(), TrainConfig()
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
    c1, c2, c3 = advanced.columns(3)
    backbone = c2.selectbox(
        tr("Backbone"), list(BACKBONES), help=tr("mobilenet_v2 works offline; ResNets need their ImageNet file.")
    )
    n_stages = BACKBONES[backbone].num_stages
    freeze_until = c3.number_input(
        tr("Freeze stages before"),
        # No upper bound here: ModelConfig knows each backbone's stage count and says so beside this box.
        min_value=0,
        value=BACKBONES[backbone].default_freeze_until,
        help=tr(
            "{backbone} has {n} stages; the ones before this index keep their ImageNet weights. "
            "Automatic mode chooses this itself.",
            backbone=backbone,
            n=n_stages,
        ),
    )
    field_error(c3, "freeze_until")
    c1, c2, c3, c4 = advanced.columns(4)
    epochs = c1.number_input(
        tr("Epochs"),
        1,
        100,
        t.epochs,
        help=tr("Used by the fast and full modes. Automatic mode trains until the validation photos stop improving."),
    )
    batch_size = c2.number_input(tr("Batch size"), 1, 256, t.batch_size)
    lr = c3.number_input(tr("Learning rate"), 1e-6, 1.0, t.lr, format="%.5f", step=1e-4)
    image_size = c4.number_input(tr("Image size"), 32, 512, m.image_size, step=32)
    for col, field in ((c1, "epochs"), (c2, "batch_size"), (c3, "lr"), (c4, "image_size")):
        field_error(col, field)
    mode = advanced.radio(
        tr("Mode"),
        list(MODE_NAMES),
        format_func=lambda m: tr(MODE_NAMES[m]),
        help=tr(
            "Instant: the whole pretrained network stays as it is and a linear classifier is fitted on what it sees "
            "in each photo: seconds once the photos are read, and often as accurate on clear photos. Fast: the frozen "
            "layers run once per photo view (the photo plus K augmented copies) and are cached; the last layers and the "
            "residual head train on them. Full: every epoch draws fresh augmentations and runs the whole network, "
            "several times slower."
        ),
    )
    c1, c2 = advanced.columns(2)
    views = c1.number_input(tr("Augmented views per photo (instant and fast modes)"), 0, 16, t.views, disabled=mode == "full")
    field_error(c1, "views")
    precision = c2.selectbox(
        tr("Precision"),
        ["auto", "bf16", "fp32"],
        format_func=lambda p: tr(PRECISION_NAMES[p]),
        help=tr(
            "Auto uses bfloat16 mixed precision when this computer's processor does it in hardware (recent Intel "
            "Xeon and Core CPUs, recent GPUs): about twice as fast, same accuracy in our tests. Otherwise float32. "
            "The saved model and predictions are always float32."
        ),
    )
    c1, c2, c3 = advanced.columns(3)
    val_every = c1.number_input(tr("Validate every N iterations"), 0, 1000, t.val_every, help=tr("0: only at each epoch end"))
    patience = c2.number_input(tr("Early-stopping patience"), 1, 100, t.patience, help=tr("validations without a lower loss"))
    seed = c3.number_input(tr("Seed"), 0, 2**31 - 1, t.seed)
    for col, field in ((c1, "val_every"), (c2, "patience"), (c3, "seed")):
        field_error(col, field)
    c1, c2, c3, c4 = advanced.columns(4)
    weight_decay = c1.number_input(tr("Weight decay"), 0.0, 1.0, t.weight_decay, format="%.5f", step=1e-4)
    label_smoothing = c2.number_input(tr("Label smoothing"), 0.0, 0.9, t.label_smoothing, step=0.05)
    lr_schedule = c3.selectbox(
        tr("Learning-rate schedule"),
        ["constant", "plateau"],
        index=["constant", "plateau"].index(t.lr_schedule),
        help=tr("Plateau halves the learning rate when validation stops improving; constant is the paper's."),
    )
    class_weights = c4.checkbox(
        tr("Balance rare species"),
        t.class_weights,
        help=tr("Rare species' photos weigh more in training, so they count as much."),
    )
    for col, field in ((c1, "weight_decay"), (c2, "label_smoothing")):
        field_error(col, field)
    augment = st.session_state.get("augment_cfg", AugmentConfig())
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
                    data=DataConfig(seed=int(seed)),
                    model=ModelConfig(
                        backbone=backbone,
                        freeze_until=None if mode == "auto" else int(freeze_until),
                        image_size=int(image_size),
                    ),
                    train=TrainConfig(
                        mode=mode,
                        views=int(views),
                        precision=precision,
                        budget=float(budget),
                        epochs=int(epochs),
                        batch_size=int(batch_size),
                        lr=float(lr),
                        weight_decay=float(weight_decay),
                        label_smoothing=float(label_smoothing),
                        lr_schedule=lr_schedule,
                        class_weights=bool(class_weights),
                        val_every=int(val_every),
                        patience=int(patience),
                        seed=int(seed),
                        augment=augment,
                    ),
                )
            except ConfigError as exc:  # shown beside its control after the rerun
                st.session_state["train_error"] = (exc.field, exc.reason, exc.value)
                st.rerun()
            st.session_state.pop("train_error", None)
            try:
                job = start_job(ws.jobs, spec)
            except FishcoreError as exc:
                st.error(error_text(exc))
            else:
                st.session_state["job_id"] = job.id
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
    state = status.get("state", "starting")
    st.subheader(tr("Run {id}: {state}", id=job.id, state=tr(state)))
    done, total = status.get("done", 0), status.get("total", 0) or 1
    phase = phase_word(status.get("phase", ""))
    eta = status.get("eta")
    text = f"{phase}: {done}/{total}" + (" · " + tr("about {s} s left", s=num(eta)) if eta and state == "running" else "")
    st.progress(min(done / total, 1.0), text=text)
    events = job.events()
    candidates = [e for e in events if e["name"] == EventName.CANDIDATE]
    if candidates:
        st.write(tr("**Ways of training tried so far**, scored on validation photos (the best one becomes the model):"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        # Jobs run before the one event type named the candidate in `message`, its F1 in `val_accuracy`.
                        tr("way"): e.get("candidate") or e.get("message"),
                        tr("validation macro-F1"): e.get("val_macro_f1", e.get("val_accuracy")),
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
    if state in ("starting", "running"):
        c1, c2 = st.columns(2)
        if c1.button(tr("Stop and keep the best model so far"), key=f"stop_keep_{job.id}"):
            job.request_stop(keep=True)
        if c2.button(tr("Stop and discard"), key=f"stop_discard_{job.id}"):
            job.request_stop(keep=False)
    elif state == "stopping":
        st.info(tr("Stopping..."))
    if state in FINAL_STATES:
        (st.error if state == "failed" else st.success)(outcome_words(status))
        if state == "failed":
            log = job.dir / "output.log"
            if log.is_file() and log.stat().st_size:
                with st.expander(tr("The training process's log")):
                    st.code(log.read_text(errors="replace")[-4000:], language=None)
            if st.button(tr("Start again with the same settings"), key=f"restart_{job.id}", type="primary"):
                try:
                    st.session_state["job_id"] = start_job(ws.jobs, job.spec).id
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
            st.session_state["evaluate_model"] = status["model_dir"]
            st.write(tr("Saved to `{path}`.", path=saved))
            with contextlib.suppress(FishcoreError):  # a folder removed since: the line above says where it was
                st.caption(promise_caption(read_card(saved)))
            c1, c2 = st.columns(2)
            current = ws.active_model()
            if saved.is_dir() and (current is None or current.resolve() != saved.resolve()):
                if c1.button(tr("Use {name} for predictions", name=saved.name), key=f"activate_{job.id}", type="primary"):
                    ws.set_active_model(saved)
                    st.rerun()
            elif saved.is_dir():
                c1.success(tr("{name} is the active model.", name=saved.name))
            c2.page_link("pages/evaluate_page.py", label=tr("Evaluate this model"), icon=":material/analytics:")
        if running:
            st.rerun()  # the whole page: re-enable Start and stop polling


# Poll once a second while the job runs; a finished job is drawn once.
st.fragment(run_every=1.0 if running else None)(monitor)(job)
