"""What one browser session keeps between reruns and pages, under typed names: `state().dataset_path`, not
`st.session_state["dataset_path"]`. Widget keys (a widget's own value) stay beside their widget; everything a
page keeps for itself or hands to another page is named here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import streamlit as st

if TYPE_CHECKING:
    from fishcore.training.jobs import Job


T = TypeVar("T")


class _Key(Generic[T]):
    """One session-state entry: read with its default, written, or cleared with `del`."""

    def __init__(self, default: Callable[[], T] | None = None) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        if self.name not in st.session_state and self.default is not None:
            st.session_state[self.name] = self.default()
        return st.session_state.get(self.name)

    def __set__(self, obj: Any, value: T) -> None:
        st.session_state[self.name] = value

    def __delete__(self, obj: Any) -> None:
        st.session_state.pop(self.name, None)


class SessionState:
    """Every name the pages keep in st.session_state (the attribute's name is the key)."""

    # shared by several pages
    dataset_path: _Key[str | None] = _Key()  # the dataset folder chosen on Data, My photos, Train or Compare
    augment_cfg: _Key[Any] = _Key()  # the lab's AugmentConfig, which the Train page trains with
    evaluate_model: _Key[str | None] = _Key()  # the model the Evaluate page opens (set by Train when a run ends)
    train_job: _Key[str | None] = _Key()  # the training job this session started (Train, Catch log's teaching)
    catch_who: _Key[str | None] = _Key()  # who gives a word in the catch log (Predict, Catch log)
    lang: _Key[str | None] = _Key()  # the language code (pages/_i18n.py)
    # Predict
    catch_place: _Key[str | None] = _Key()  # the place or landing site typed once per session
    catch_logged: _Key[dict] = _Key(dict)  # (model checksum, photo sha1) -> entry id: each answer recorded once
    pred_cache: _Key[dict] = _Key(dict)  # (model, weights, photo sha1) -> prediction or error text
    pred_threshold_of: _Key[str | None] = _Key()  # the model the threshold slider was set for
    heat_maps: _Key[dict] = _Key(dict)  # Grad-CAM images already computed
    # Train
    train_error: _Key[tuple | None] = _Key()  # (field, reason, value) of a rejected setting, shown beside its control
    # Compare
    compare_job: _Key[str | None] = _Key()
    compare_open: _Key[str | None] = _Key()  # the comparison whose results are shown
    # Evaluate
    eval_key: _Key[tuple | None] = _Key()
    eval_report: _Key[Any] = _Key()
    eval_true: _Key[str | None] = _Key()
    eval_pred: _Key[str | None] = _Key()
    # Augmentation lab
    aug_seed: _Key[int] = _Key(lambda: 0)
    # Models
    model_zip_n: _Key[int] = _Key(lambda: 0)  # bumped to empty the import uploader
    models_message: _Key[str | None] = _Key()
    # Phones
    phones_message: _Key[str | None] = _Key()
    phones_new: _Key[dict | None] = _Key()  # the phone just added: its name, link and QR code (shown once)
    # Catch log
    teach_job: _Key[str | None] = _Key()  # the teaching job this session started, whose outcome the page shows
    # My photos
    photos_dataset: _Key[str | None] = _Key()
    photos_plan: _Key[Any] = _Key()
    photos_message: _Key[str | None] = _Key()
    camera_count: _Key[int] = _Key(lambda: 0)
    camera_last: _Key[str | None] = _Key()


_STATE = SessionState()


def state() -> SessionState:
    """This session's state (the object is shared; every read and write goes to the session's own st.session_state)."""
    return _STATE


def watched_job(root: Path, started: str | None) -> Job | None:
    """The job a page shows: the one running under root, else the one this session started (``started``, its id),
    else None."""
    from fishcore.training.jobs import Job, active_job

    job = active_job(root)
    if job is None and started:
        candidate = Job(Path(root) / started)
        job = candidate if candidate.dir.is_dir() else None
    return job


def newest_job(root: Path) -> Job | None:
    from fishcore.training.jobs import list_jobs

    jobs = list_jobs(root)
    return jobs[0] if jobs else None
