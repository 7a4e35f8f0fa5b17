"""What the catch log records and gives back: an Answer as the model gave it, an Entry as read back, the
filter that selects entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Answer:
    """One answer as Predict gave it: the species, how sure, the verdict and its reason, the runners-up."""

    label: str
    confidence: float
    verdict: str
    reason: str
    top: list[tuple[str, float]]
    distance: float | None = None  # to the nearest training photo (cosine), when the model has a profile
    distance_threshold: float | None = None  # beyond it the photo is "unfamiliar"
    candidates: list[tuple[str, float]] = field(default_factory=list)  # the prediction set, most probable first
    set_coverage: float | None = None  # how often such a set holds the right species
    threshold: float | None = None  # the confidence threshold the verdict used

    @classmethod
    def from_prediction(cls, p: Any, distance_threshold: float | None = None, threshold: float | None = None) -> Answer:
        """The answer of a fishcore.inference.predict.Prediction (Predictor.answer fills in the model's thresholds)."""
        return cls(p.label, p.confidence, p.verdict, p.reason, list(p.top), p.distance, distance_threshold,
                   list(p.candidates), p.coverage, threshold)  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    """What record() did: the entry's id, and whether it waits in the spool for the database."""

    entry_id: str
    spooled: bool


@dataclass
class LogFilter:
    """Which entries to show or export; every part is optional."""

    since: date | None = None
    until: date | None = None  # inclusive
    species: str | None = None  # the answer's species, or the species the user said it is
    verdict: str | None = None
    confirmed: bool | None = None  # True: the user gave a word; False: not yet
    place: str | None = None
    model: str | None = None  # model name
    limit: int | None = None


@dataclass
class Entry:
    """An entry as read back, with the user's latest word (None when there is none yet)."""

    id: str
    created_at: datetime
    place: str
    session: str
    model_name: str
    model_checksum: str
    photo_sha256: str
    top: list[tuple[str, float]]
    label: str
    confidence: float
    verdict: str
    reason: str
    count: int
    weight_kg: float | None
    word: str | None = None
    true_species: str | None = None
    word_by: str | None = None
    word_at: datetime | None = None
    distance: float | None = None
    distance_threshold: float | None = None
    taught_to: str | None = None
    taught_at: datetime | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)
    set_coverage: float | None = None
    threshold: float | None = None
    photo_file: str = ""
    phash: str | None = None
    device: str | None = None  # the device it came from (the field server); None: this station
    updated_at: datetime | None = None  # when the station last changed it

    @property
    def species(self) -> str:
        """What the fish is, as far as anyone knows: the user's word when given, else the model's answer."""
        if self.word == "wrong" and self.true_species:
            return self.true_species
        return "" if self.word == "not_fish" else self.label

    @property
    def right(self) -> bool | None:
        """Was the model right, by the user's word (None: no word yet)."""
        if self.word is None:
            return None
        return self.word == "right" or (self.word == "wrong" and self.true_species == self.label)
