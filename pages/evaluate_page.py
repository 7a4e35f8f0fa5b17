"""Evaluate: confusion matrix you can click, per-class metrics, the paper's error measures, downloads."""

import json
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.data.thumbnails import thumbnail
from fishcore.errors import FishcoreError
from fishcore.inference.evaluate import evaluate_files, evaluation_samples, saved_test_report
from fishcore.store.model_files import read_card
from pages._i18n import error_text, num, pct, tr
from pages._shared import dataset_input, heat_map_panel, load_predictor, workspace
from pages._state import state

ws = workspace()
st.title(tr("Evaluate"))

models = ws.model_dirs()
if not models:
    st.info(tr("No model yet: train one on the Train page."))
    st.stop()
wanted = state().evaluate_model or str(ws.active_model())
index = next((i for i, p in enumerate(models) if str(p) == wanted), 0)
model_dir = st.selectbox(tr("Model"), models, index=index, format_func=lambda p: p.name, key="eval_model")
try:
    card = read_card(model_dir)
except FishcoreError as exc:
    st.error(error_text(exc))
    st.stop()

split_root = card.test_root
has_split = bool(card.split.get("test")) and split_root is not None and split_root.is_dir()
SOURCES = {"test": "Its saved test split", "all": "All photos of another folder"}
options = (["test"] if has_split else []) + ["all"]
source = st.radio(tr("Data"), options, horizontal=True, key="eval_source", format_func=lambda o: tr(SOURCES[o]))
if source == "test":
    root, split = split_root, "test"
    st.caption(tr("{n} photos of {folder} that training never saw.", n=num(len(card.split["test"])), folder=split_root))
else:
    if not has_split:
        st.caption(tr("The folder this model was trained on is not here, so its saved split cannot be used."))
    root, split = dataset_input("eval", tr("Folder to evaluate on")), "all"
    if not root:
        st.stop()

key = (str(model_dir), card.weights_sha256, str(root), split)
report = state().eval_report if state().eval_key == key else None
if report is None and split == "test":
    report = saved_test_report(model_dir, root)
if report is None:
    if not st.button(tr("Evaluate"), type="primary"):
        st.stop()
    try:
        samples = evaluation_samples(card, root, split, ws.cache / "scans")
        bar = st.progress(0.0, text=tr("Evaluating..."))
        report = evaluate_files(
            load_predictor(model_dir),
            samples,
            root=Path(root),
            progress=lambda done, total: bar.progress(
                done / total, text=tr("Evaluating... {done}/{total} photos", done=done, total=total)
            ),
        )
        bar.empty()
    except FishcoreError as exc:
        st.error(error_text(exc))
        st.stop()
state().eval_key, state().eval_report = key, report

cols = st.columns(5)
cols[0].metric(tr("Photos"), num(report.n))
cols[1].metric(tr("Accuracy"), pct(report.accuracy, 2))
cols[2].metric(tr("Macro precision"), num(report.macro_precision, 3))
cols[3].metric(tr("Macro recall"), num(report.macro_recall, 3))
cols[4].metric(tr("Macro F1"), num(report.macro_f1, 3))
st.caption(
    tr(
        "The paper's error measures, between one-hot labels and predicted probabilities: MSE {mse}, RMSE {rmse}, "
        "MAE {mae}. Top-k accuracy: {top_k}",
        mse=num(report.mse, 5),
        rmse=num(report.rmse, 5),
        mae=num(report.mae, 5),
        top_k=", ".join(f"top-{k} {pct(v, 2)}" for k, v in report.top_k_accuracy.items()),
    )
)

st.subheader(tr("Confusion matrix"))
normalise = st.toggle(tr("Row-normalised (share of each true species)"), key="eval_norm")
cells = []
for i, true in enumerate(report.classes):
    row_total = sum(report.confusion_matrix[i]) or 1
    for j, pred in enumerate(report.classes):
        count = report.confusion_matrix[i][j]
        cells.append({"true": true, "predicted": pred, "count": count, "share": count / row_total})
frame = pd.DataFrame(cells)
value = "share" if normalise else "count"
pick = alt.selection_point(fields=["true", "predicted"], name="cell")
heat = (
    alt.Chart(frame)
    .mark_rect()
    .encode(
        x=alt.X("predicted:N", sort=report.classes, title=tr("predicted")),
        y=alt.Y("true:N", sort=report.classes, title=tr("true")),
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues"), legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.6)),
        tooltip=[
            alt.Tooltip("true", title=tr("true")),
            alt.Tooltip("predicted", title=tr("predicted")),
            alt.Tooltip("count", title=tr("count")),
            alt.Tooltip("share:Q", title=tr("share"), format=".1%"),
        ],
    )
    .add_params(pick)
)
labels = (
    alt.Chart(frame)
    .mark_text(fontSize=13)
    .encode(
        x=alt.X("predicted:N", sort=report.classes),
        y=alt.Y("true:N", sort=report.classes),
        text=alt.Text(f"{value}:Q", format=".0%" if normalise else "d"),
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
    )
)
event = st.altair_chart(
    (heat + labels).properties(height=60 + 36 * len(report.classes)), on_select="rerun", key="eval_cm", width="stretch"
)
picked = (event.selection.get("cell") or [None])[0] if event and event.selection else None
if picked:
    state().eval_true, state().eval_pred = picked["true"], picked["predicted"]
if state().eval_true not in report.classes:
    # Start on the largest mistake, or the first class when there is none.
    off = [c for c in cells if c["true"] != c["predicted"] and c["count"]]
    first = max(off, key=lambda c: c["count"]) if off else cells[0]
    state().eval_true, state().eval_pred = first["true"], first["predicted"]
c1, c2 = st.columns(2)
true = c1.selectbox(tr("True species"), report.classes, key="eval_true")
pred = c2.selectbox(tr("Predicted species"), report.classes, key="eval_pred")
rows = report.cell(true, pred)
if true == pred:
    st.write(tr("**{n}** correct photo(s) of *{true}*, least confident first.", n=num(len(rows)), true=true))
else:
    st.write(
        tr(
            "**{n}** mistaken photo(s): true *{true}*, predicted *{pred}*, most confident mistakes first.",
            n=num(len(rows)),
            true=true,
            pred=pred,
        )
    )
grid = st.columns(6)
for k, r in enumerate(rows[:24]):
    path = Path(root) / r["file"]
    try:
        grid[k % 6].image(str(thumbnail(path, 160, ws.thumbnails)), caption=f"{pct(r['confidence'], 1)} · {path.name}")
    except (FishcoreError, OSError):
        grid[k % 6].caption(tr("{file} (not found)", file=r["file"]))
if len(rows) > 24:
    st.caption(tr("...and {n} more (see the CSV).", n=num(len(rows) - 24)))
if rows and st.toggle(tr("Where did the model look? (Grad-CAM heat map of one of these photos)"), key="eval_heat_on"):
    shown = [r["file"] for r in rows[:24]]
    photo = st.selectbox(tr("Photo"), shown, key="eval_heat_photo")
    path = Path(root) / photo
    if path.is_file():
        try:
            heat_map_panel(load_predictor(model_dir), str(path), pred, key="eval_heat")
        except FishcoreError as exc:
            st.caption(tr("No heat map: {error}", error=exc))
    else:
        st.caption(tr("No heat map: {error}", error=tr("{file} is no longer on disk", file=photo)))

st.subheader(tr("Per species"))
per_species = pd.DataFrame(
    [
        {tr("species"): c, tr("precision"): m["precision"], tr("recall"): m["recall"], "F1": m["f1"], tr("photos"): m["support"]}
        for c, m in report.per_class.items()
    ]
)
st.dataframe(
    per_species,
    hide_index=True,
    width="stretch",
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in (tr("precision"), tr("recall"), "F1")},
)
c1, c2 = st.columns(2)
c1.download_button(
    tr("Report (JSON)"),
    json.dumps(report.to_dict(), indent=1, ensure_ascii=False),
    f"{model_dir.name}-report.json",
    "application/json",
)
c2.download_button(
    tr("Per-photo rows (CSV)"), pd.DataFrame(report.rows).to_csv(index=False), f"{model_dir.name}-rows.csv", "text/csv"
)
