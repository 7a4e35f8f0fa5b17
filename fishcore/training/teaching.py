"""Teaching: confirmed catch log entries into a My photos dataset, a retraining job, and each model version's
accuracy on the kept-back photos (the field test set: confirmed photos never trained on, store/catchlog/kept_back.py).

Teaching adds each confirmed fish (the species the user gave, a new name making a new species) to the
dataset with its provenance (catch entry, date, place) in the dataset's FIELD_MANIFEST, skips photos the
dataset already holds, marks the entries taught, and starts a training job in auto mode within the
budget, like any from the Train page. Features are cached by photo content, so only new photos cost a
network pass. The new version's card records which field photos it learned from
(``card.dataset["field_photos"]``, filled by the pipeline from the manifest).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fishcore.config import DataConfig, TrainConfig
from fishcore.errors import DatasetError
from fishcore.store.catchlog import CatchLog, Entry
from fishcore.store.catchlog.kept_back import kept_back_set, teachable
from fishcore.store.jsonfile import write_json
from fishcore.store.my_photos import FIELD_MANIFEST, DatasetArea, ImportPlan, field_manifest, safe_name


@dataclass
class Lesson:
    """What teaching did: the import plan it applied, the entries taught, and those held back for the field test."""

    plan: ImportPlan
    taught: list[Entry]
    held_back: list[Entry]
    dataset_dir: Path


def teach(log: CatchLog, area: DatasetArea, dataset: str) -> Lesson:
    """Add every confirmed fish not taught yet (the field test set held back) to ``dataset`` (made if new)."""
    name = safe_name(dataset, "dataset name")
    to_teach, held_back = teachable(log.entries())
    if not to_teach:
        raise DatasetError("no confirmed photos to teach yet: confirm some answers in the catch log first")
    if name not in area.names():
        area.create(name)
    sources, origin = [], {}
    for e in to_teach:
        suffix = Path(e.photo_file).suffix or ".jpg"
        rel = f"{safe_name(e.species, 'species name')}/field-{e.created_at:%Y%m%d}-{e.id[:8]}{suffix}"
        sources.append((rel, log.photo_path(e.photo_sha256).read_bytes()))
        origin[rel] = e
    plan = area.plan_import(name, sources)
    written = area.apply_import(plan)
    root = area.path(name)
    manifest = field_manifest(root)
    for photo, target in zip(plan.add, written, strict=True):
        e = origin[photo.origin]
        manifest[target.relative_to(root).as_posix()] = {
            "entry": e.id, "date": e.created_at.isoformat(), "place": e.place, "model": e.model_name,
            "word": e.word, "species": e.species,
        }  # fmt: skip
    write_json(root / FIELD_MANIFEST, manifest)
    # Photos the dataset already had (the same bytes) count as taught too: nothing is left to add for them.
    taught = [origin[o] for o in [p.origin for p in plan.add] + [o for o, _ in plan.duplicates]]
    log.mark_taught([e.id for e in taught], name)
    return Lesson(plan, taught, held_back, root)


def teach_and_train(
    log: CatchLog,
    area: DatasetArea,
    jobs_dir: str | os.PathLike,
    models_dir: str | os.PathLike,
    dataset: str,
    start_from: str | os.PathLike | None = None,
    budget: float = 180.0,
    progress: Callable[[int, int], None] | None = None,
    activate: bool = False,
    active: str | os.PathLike | None = None,
):
    """Teach the confirmed photos to a new model version: into ``dataset`` (when new, first filled with the photos
    of ``start_from``, the folder the active model was trained on), then a training job of that name; (lesson, job).

    When the job has saved the new version it is judged against ``active`` (the version active now) on the photos
    both can be judged on, and with ``activate`` made active when at least as good
    (``training.versions.conclude_teaching``; the job's status says what was decided and why). The Catch log page's
    "Teach and send to the phones" and `fishcore teach` both call this. Refused while a training job runs.
    """
    from fishcore.training.jobs import active_job, start_job

    if active_job(jobs_dir) is not None:
        raise DatasetError("a training run is already going: teach the model when it has finished")
    name = safe_name(dataset, "dataset name")
    if not teachable(log.entries())[0]:
        raise DatasetError("no confirmed photos to teach yet: confirm some answers in the catch log first")
    if start_from is not None and name not in area.names():
        area.create(name)
        area.apply_import(area.plan_import(name, Path(start_from), progress=progress), progress=progress)
    lesson = teach(log, area, name)
    spec = teaching_job_spec(lesson.dataset_dir, Path(models_dir), name, budget, len(lesson.taught))
    spec.teach = {
        "activate": activate, "compare_with": str(active) if active else None, "photos": len(lesson.taught),
        "held_back": len(lesson.held_back), "typed": {safe_name(e.species, "species name"): e.species for e in lesson.taught},
    }  # fmt: skip
    job = start_job(jobs_dir, spec)
    return lesson, job


def teaching_job_spec(dataset_dir: Path, models_dir: Path, model_name: str, budget: float, n_photos: int):
    """A training job over the taught dataset: auto mode within ``budget`` seconds, a new version of model_name."""
    from fishcore.training.jobs import JobSpec

    return JobSpec(
        data_dir=str(dataset_dir),
        out_dir=str(models_dir / safe_name(model_name, "model name")),
        data=DataConfig(),
        # The backbone stays: a version on another network would send phones a whole new model, not an update.
        train=TrainConfig(mode="auto", budget=budget, stronger_backbone=False),
        notes=[f"taught with {n_photos} confirmed field photos from the catch log"],
    )


@dataclass
class KeptBackScore:
    """A model version on the field test set: right answers, and how many of its confident answers were right."""

    right: int
    total: int
    confident_right: int
    confident: int
    skipped: int  # field test photos of species this version does not know

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None

    def breaks_promise(self, precision: float, level: float = 0.9) -> bool:
        """True when the confident answers on these photos are clearly less often right than promised: even
        the upper bound of their share (Clopper-Pearson, ``level``) is under ``precision``."""
        from fishcore.inference.calibration import precision_lower_bound

        wrong = self.confident - self.confident_right
        return self.confident > 0 and 1.0 - precision_lower_bound(wrong, self.confident, level) < precision


def kept_back_score(model_dir: str | os.PathLike, log: CatchLog, entries: list[Entry] | None = None) -> KeptBackScore:
    """How right a model version is on the users' own confirmed photos that no version was taught with."""
    from fishcore.store.model_files import read_card
    from fishcore.training.versions import judge

    items = kept_back_set(log.entries() if entries is None else entries)
    classes = set(read_card(model_dir).classes)
    known = [(log.photo_path(e.photo_sha256), e.species) for e in items if e.species in classes]
    (score,) = judge(model_dir, known)
    return KeptBackScore(score.right, score.total, score.confident_right, score.confident, len(items) - len(known))
