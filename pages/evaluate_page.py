"""Evaluate: confusion matrix you can click, per-class metrics, the paper's error measures, downloads."""

import json
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from fishcore.data.dataset import thumbnail
from fishcore.errors import FishcoreError
from fishcore.inference.evaluate import evaluate_files, evaluation_samples, saved_test_report
from fishcore.store.model_files import read_card
from pages._shared import dataset_input, heat_map_panel, load_predictor, workspace

ws = workspace()
st.title("Evaluate")

models = ws.model_dirs()
if not models:
    st.info("No model yet: train one on the Train page.")
    st.stop()
wanted = st.session_state.get("evaluate_model") or str(ws.active_model())
index = next((i for i, p in enumerate(models) if str(p) == wanted), 0)
model_dir = st.selectbox("Model", models, index=index, format_func=lambda p: p.name, key="eval_model")
try:
    card = read_card(model_dir)
except FishcoreError as exc:
    st.error(str(exc))
    st.stop()

split_root = card.test_root
has_split = bool(card.split.get("test")) and split_root is not None and split_root.is_dir()
options = (["Its saved test split"] if has_split else []) + ["All photos of another folder"]
source = st.radio("Data", options, horizontal=True, key="eval_source")
if source == "Its saved test split":
    root, split = split_root, "test"
    st.caption(f"{len(card.split['test'])} photos of {split_root} that training never saw.")
else:
    if not has_split:
        st.caption("The folder this model was trained on is not here, so its saved split cannot be used.")
    root, split = dataset_input("eval", "Folder to evaluate on"), "all"
    if not root:
        st.stop()

key = (str(model_dir), card.weights_sha256, str(root), split)
report = st.session_state.get("eval_report") if st.session_state.get("eval_key") == key else None
if report is None and split == "test":
    report = saved_test_report(model_dir, root)
if report is None:
    if not st.button("Evaluate", type="primary"):
        st.stop()
    try:
        samples = evaluation_samples(card, root, split, ws.cache / "scans")
        bar = st.progress(0.0, text="Evaluating...")
        report = evaluate_files(
            load_predictor(model_dir),
            samples,
            root=Path(root),
            progress=lambda done, total: bar.progress(done / total, text=f"Evaluating... {done}/{total} photos"),
        )
        bar.empty()
    except FishcoreError as exc:
        st.error(str(exc))
        st.stop()
st.session_state["eval_key"], st.session_state["eval_report"] = key, report

cols = st.columns(5)
cols[0].metric("Photos", report.n)
cols[1].metric("Accuracy", f"{report.accuracy:.2%}")
cols[2].metric("Macro precision", f"{report.macro_precision:.3f}")
cols[3].metric("Macro recall", f"{report.macro_recall:.3f}")
cols[4].metric("Macro F1", f"{report.macro_f1:.3f}")
st.caption(
    f"The paper's error measures, between one-hot labels and predicted probabilities: MSE {report.mse:.5f}, "
    f"RMSE {report.rmse:.5f}, MAE {report.mae:.5f}. Top-k accuracy: "
    + ", ".join(f"top-{k} {v:.2%}" for k, v in report.top_k_accuracy.items())
)

st.subheader("Confusion matrix")
normalise = st.toggle("Row-normalised (share of each true species)", key="eval_norm")
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
        x=alt.X("predicted:N", sort=report.classes, title="predicted"),
        y=alt.Y("true:N", sort=report.classes, title="true"),
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues"), legend=None),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.6)),
        tooltip=["true", "predicted", "count", alt.Tooltip("share:Q", format=".1%")],
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
    st.session_state["eval_true"], st.session_state["eval_pred"] = picked["true"], picked["predicted"]
if "eval_true" not in st.session_state or st.session_state["eval_true"] not in report.classes:
    # Start on the largest mistake, or the first class when there is none.
    off = [c for c in cells if c["true"] != c["predicted"] and c["count"]]
    first = max(off, key=lambda c: c["count"]) if off else cells[0]
    st.session_state["eval_true"], st.session_state["eval_pred"] = first["true"], first["predicted"]
c1, c2 = st.columns(2)
true = c1.selectbox("True species", report.classes, key="eval_true")
pred = c2.selectbox("Predicted species", report.classes, key="eval_pred")
rows = report.cell(true, pred)
kind = "correct" if true == pred else "mistaken"
st.write(
    f"**{len(rows)}** {kind} photo(s): true *{true}*, predicted *{pred}*"
    + (", most confident mistakes first." if true != pred else ", least confident first.")
)
grid = st.columns(6)
for k, r in enumerate(rows[:24]):
    path = Path(root) / r["file"]
    try:
        grid[k % 6].image(str(thumbnail(path, 160, ws.thumbnails)), caption=f"{r['confidence']:.1%} · {path.name}")
    except (FishcoreError, OSError):
        grid[k % 6].caption(f"{r['file']} (not found)")
if len(rows) > 24:
    st.caption(f"...and {len(rows) - 24} more (see the CSV).")
if rows and st.toggle("Where did the model look? (Grad-CAM heat map of one of these photos)", key="eval_heat_on"):
    shown = [r["file"] for r in rows[:24]]
    photo = st.selectbox("Photo", shown, key="eval_heat_photo")
    path = Path(root) / photo
    try:
        if not path.is_file():
            raise FishcoreError(f"{photo} is no longer on disk")
        heat_map_panel(load_predictor(model_dir), str(path), pred, key="eval_heat")
    except FishcoreError as exc:
        st.caption(f"No heat map: {exc}.")

st.subheader("Per species")
st.dataframe(
    pd.DataFrame([{"species": c, **m} for c, m in report.per_class.items()]).style.format(
        {"precision": "{:.3f}", "recall": "{:.3f}", "f1": "{:.3f}"}
    ),
    hide_index=True,
    width="stretch",
)
c1, c2 = st.columns(2)
c1.download_button(
    "Report (JSON)",
    json.dumps(report.to_dict(), indent=1, ensure_ascii=False),
    f"{model_dir.name}-report.json",
    "application/json",
)
c2.download_button(
    "Per-photo rows (CSV)", pd.DataFrame(report.rows).to_csv(index=False), f"{model_dir.name}-rows.csv", "text/csv"
)
