"""Which version the phones get: every saved model with its scores, and the rule that decides whether a version
taught from the field replaces the active one.

The rule (``compare_versions``): the two versions answer the same photos, those both can be judged on, in two sets:

- the field test set: confirmed catch log photos no version is taught with, of species both versions know;
- the new version's held-out test photos, of species both know, leaving out any photo the active version was
  trained or validated on (by content), so neither has seen them.

The new version becomes active only when it is right on at least as many photos as the active one in each set (up
to one photo in a hundred fewer, ``MARGIN``: on 269 held-out LSFD photos a retrained version once named 268 where the
active one named 269, a difference no test could tell from chance, and a rule that strict never let the loop
close; on a dozen kept-back photos no miss is forgiven), and its promise ("confident answers are right at least P of
the time") is backed by its held-out photos whenever the active one's is. The reason, whichever way it goes, is one
sentence (``Decision.sentence``) and a code with values for pages to word in their language.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fishcore.errors import FishcoreError
from fishcore.store.catchlog import CatchLog, Entry
from fishcore.store.catchlog.kept_back import kept_back_set
from fishcore.store.model_files import ModelCard, family_of, read_card
from fishcore.store.species import clean_card
from fishcore.store.workspace import Workspace

MARGIN = 0.01  # the share of the judged photos the new version may name wrong beyond the active one's mistakes


def worse(new: Judged, old: Judged) -> bool:
    """Whether the new version is right on clearly fewer of the same photos than the old (more than MARGIN of them)."""
    return new.right < old.right - int(MARGIN * new.total)


@dataclass
class Judged:
    """One version on one set of photos: right answers, and how many of its confident answers were right."""

    right: int = 0
    total: int = 0
    confident_right: int = 0
    confident: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None


def judge(model_dir: str | os.PathLike, *sets: Sequence[tuple[Path, str]], progress: Callable | None = None) -> list[Judged]:
    """How often a model version names each set of (photo, species) pairs right, and its confident answers among
    them: one Judged per set, the model loaded once and every photo predicted in one pass."""
    from fishcore.inference.openset import CONFIDENT
    from fishcore.inference.predict import Predictor

    photos = [pair for group in sets for pair in group]
    if not photos:
        return [Judged() for _ in sets]
    results = Predictor.load(model_dir, engine="auto").predict([p for p, _ in photos], top_k=1, progress=progress)
    out, start = [], 0
    for group in sets:
        part = list(zip(results[start : start + len(group)], group, strict=True))
        start += len(group)
        right = [r.label == species for r, (_, species) in part]
        confident = [r.verdict == CONFIDENT for r, _ in part]
        out.append(Judged(sum(right), len(part), sum(a and b for a, b in zip(right, confident, strict=True)), sum(confident)))
    return out


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def seen_photos(card: ModelCard) -> set[str] | None:
    """The content hashes of the photos a model was trained and validated on (None: its folder is not here)."""
    root = card.data_root
    if root is None or not root.is_dir():
        return None
    found = {_sha256(root / rel) for rel in [*card.split.get("train", ()), *card.split.get("val", ())]}
    return {h for h in found if h}


def heldout_photos(new: ModelCard, old: ModelCard) -> tuple[list[tuple[Path, str]], bool]:
    """The new version's test photos of species both know that the old version never trained on; and whether the old
    version's training photos could be checked (False: its folder is gone, so it may have seen some of them)."""
    root = new.test_root
    if root is None:
        return [], True
    shared = set(new.classes) & set(old.classes)
    seen = seen_photos(old)
    out = []
    for rel in new.split.get("test", ()):
        species = Path(rel).parts[0]
        path = root / rel
        if species in shared and path.is_file() and (seen is None or _sha256(path) not in seen):
            out.append((path, species))
    return out, seen is not None


def kept_back_photos(log: CatchLog | None, classes: set[str], entries: list[Entry] | None = None) -> list[tuple[Path, str]]:
    """The field test set's photos of these species (the species the user gave)."""
    if log is None:
        return []
    try:
        items = kept_back_set(log.entries() if entries is None else entries)
    except FishcoreError:
        return []
    return [(log.photo_path(e.photo_sha256), e.species) for e in items if e.species in classes]


@dataclass
class Decision:
    """Whether the new version replaces the active one, the scores it was decided on, and what was learned."""

    new: str  # model folders
    old: str | None
    activate: bool
    code: str  # better | no_active | same_model | worse_kept_back | worse_heldout | promise | nothing_shared
    kept_back_new: Judged = field(default_factory=Judged)
    kept_back_old: Judged = field(default_factory=Judged)
    heldout_new: Judged = field(default_factory=Judged)
    heldout_old: Judged = field(default_factory=Judged)
    new_backed: bool = False
    old_backed: bool = False
    old_seen_checked: bool = True
    species: list[str] = field(default_factory=list)
    new_species: list[str] = field(default_factory=list)
    activated: bool = False  # set when the activation was asked for and done

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        d = dict(data)
        for key in ("kept_back_new", "kept_back_old", "heldout_new", "heldout_old"):
            d[key] = Judged(**(d.get(key) or {}))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def sentence(self) -> str:
        """Why, in one English sentence (pages word ``code`` in the user's language)."""
        new, old = Path(self.new).name, Path(self.old).name if self.old else ""
        f, h = f"{self.kept_back_new.right} vs {self.kept_back_old.right} of {self.kept_back_new.total}", (
            f"{self.heldout_new.right} vs {self.heldout_old.right} of {self.heldout_new.total}"
        )
        return {
            "better": f"{new} is at least as good as {old} on the photos both can be judged on (your kept-back photos: "
            f"{f} right; held-out photos: {h} right) and its promise is as well backed",
            "no_active": f"{new} is the first model of this station",
            "same_model": f"{new} is already the active model",
            "worse_kept_back": f"{old} stays: on your kept-back photos {new} was right on fewer ({f})",
            "worse_heldout": f"{old} stays: on the held-out photos {new} was right on fewer ({h})",
            "promise": f"{old} stays: its promise is backed by its held-out photos and {new}'s is not (too few photos "
            "or too many confident mistakes)",
            "nothing_shared": f"{old} stays: there are no photos both versions can be judged on and {new}'s promise is "
            "not backed",
        }[self.code]


def compare_versions(new_dir: str | os.PathLike, old_dir: str | os.PathLike | None, log: CatchLog | None,
                     progress: Callable[[int, int], None] | None = None) -> Decision:  # fmt: skip
    """Judge the new version against the old (the active one) on the photos both can be judged on; the decision."""
    from fishcore.inference.calibration import Promise

    new = read_card(new_dir)
    new_promise = Promise.from_card(new.promise)
    base = {"new": str(new_dir), "species": list(new.classes), "new_backed": bool(new_promise and new_promise.backed)}
    if old_dir is None:
        return Decision(old=None, activate=True, code="no_active", new_species=list(new.classes), **base)
    if Path(old_dir).resolve() == Path(new_dir).resolve():
        return Decision(old=str(old_dir), activate=False, code="same_model", **base)
    old = read_card(old_dir)
    old_promise = Promise.from_card(old.promise)
    shared = set(new.classes) & set(old.classes)
    on_kept_back = kept_back_photos(log, shared)
    on_heldout, checked = heldout_photos(new, old)
    d = Decision(old=str(old_dir), activate=False, code="better", old_backed=bool(old_promise and old_promise.backed),
                 old_seen_checked=checked, new_species=[c for c in new.classes if c not in old.classes], **base)  # fmt: skip
    d.kept_back_new, d.heldout_new = judge(new_dir, on_kept_back, on_heldout, progress=progress)
    d.kept_back_old, d.heldout_old = judge(old_dir, on_kept_back, on_heldout)
    if worse(d.kept_back_new, d.kept_back_old):
        d.code = "worse_kept_back"
    elif worse(d.heldout_new, d.heldout_old):
        d.code = "worse_heldout"
    elif d.old_backed and not d.new_backed:
        d.code = "promise"
    elif not on_kept_back and not on_heldout and not d.new_backed:
        d.code = "nothing_shared"
    d.activate = d.code == "better"
    return d


def inherit_cards(new_dir: str | os.PathLike, old_dir: str | os.PathLike | None, typed: dict[str, str]) -> None:
    """Give a version taught from the field its species cards: the active version's for the species it knew (edits
    made on the Models page carry over), the shipped ones where they exist, and for a species a fisherman named,
    a card with the name as typed (edited later on the Models page)."""
    from fishcore.store.species import save_cards

    card = read_card(new_dir)
    cards = dict(card.species)
    if old_dir is not None:
        with contextlib.suppress(FishcoreError):
            cards.update({c: v for c, v in read_card(old_dir).species.items() if c in card.classes})
    for species in card.classes:
        if species not in cards and species in typed:
            cards[species] = clean_card({"en": typed[species], "id": typed[species]})
    if cards != card.species:
        save_cards(new_dir, cards)


@dataclass
class VersionRow:
    """One saved model as `models list` and the Models page show it."""

    folder: str
    name: str
    family: str
    version: int
    active: bool
    usable: bool
    problem: str = ""
    species: list[str] = field(default_factory=list)
    backbone: str = ""
    mode: str = ""
    created: str = ""
    test_accuracy: float | None = None
    test_macro_f1: float | None = None
    field_right: int | None = None  # on the field test set (species it knows)
    field_total: int | None = None
    promise_backed: bool | None = None
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_versions(ws: Workspace, log: CatchLog | None = None, with_field: bool = True) -> list[VersionRow]:
    """Every saved model, families together and newest version first, with its test and field scores."""
    from fishcore.inference.calibration import Promise

    active = ws.active_model()
    try:
        items = kept_back_set(log.entries()) if (log is not None and with_field) else []
    except FishcoreError:
        items = []
    rows = []
    for path, card, why in ws.models_with_cards():
        family, version = family_of(path.name)
        row = VersionRow(folder=str(path), name=path.name, family=family, version=version, usable=card is not None,
                         active=active is not None and path.resolve() == active.resolve(), problem=why)  # fmt: skip
        if card is not None:
            test = card.metrics.get("test") or {}
            promise = Promise.from_card(card.promise)
            row.species, row.backbone, row.mode, row.created = list(card.classes), card.backbone, card.training.mode, card.created
            row.test_accuracy, row.test_macro_f1 = test.get("accuracy"), test.get("macro_f1")
            row.promise_backed = promise.backed if promise else None
            row.parent = (card.lineage or {}).get("parent")
            photos = [(log.photo_path(e.photo_sha256), e.species) for e in items if e.species in card.classes] if log else []
            if photos:
                (score,) = judge(path, photos)
                row.field_right, row.field_total = score.right, score.total
        rows.append(row)
    order = {}
    for r in rows:
        order.setdefault(r.family, len(order))
    return sorted(rows, key=lambda r: (order[r.family], -r.version))


def conclude_teaching(teach: dict, model_dir: str | os.PathLike | None) -> dict:
    """After a teaching job saved its version: species cards for the species fishermen named, the new version judged
    against the one that was active when teaching began, and, when ``teach["activate"]``, made active if it is at
    least as good (fishcore.training.versions). The decision as a dict (the job's status keeps it)."""
    if model_dir is None:
        return {}
    ws = Workspace.from_env()
    old = teach.get("compare_with")
    old = old if old and Path(old).is_dir() else None
    inherit_cards(model_dir, old, teach.get("typed") or {})
    decision = compare_versions(model_dir, old, CatchLog())
    if teach.get("activate") and decision.activate:
        ws.set_active_model(Path(model_dir), why=f"taught from the field: {decision.code}")
        decision.activated = True
    return {**decision.to_dict(), "sentence": decision.sentence(), "taught": teach.get("photos", 0),
            "held_back": teach.get("held_back", 0), "asked_to_activate": bool(teach.get("activate"))}  # fmt: skip
