"""The field server's requests and responses, typed (pydantic): what the OpenAPI description at /docs shows, and
what fieldapp/contract/schema.json gives the phone. Every limit is the catch log's own (checks.py), defined once.

Values a user types (a place, a species, a count, a weight) are checked by the catch log's own rules
(fishcore.store.catchlog.checks), so the server, the pages and the command line refuse the same things."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from fishcore.store.catchlog.checks import (
    COUNT_MAX,
    NAME_MAX,
    PLACE_MAX,
    REASON_MAX,
    SESSION_MAX,
    SPECIES_MAX,
    TOP_MAX,
    WEIGHT_MAX_KG,
    CatchLogError,
    check_distance,
    check_label,
    check_place,
    check_ranked,
    check_species,
    check_when,
    plain_text,
)

SHA256 = r"^[0-9a-f]{64}$"


def _checked(check, value):
    try:
        return check(value)
    except CatchLogError as exc:
        raise ValueError(str(exc)) from None


class Strict(BaseModel):
    """What a device sends: no unknown fields, no NaN or infinity; every value then passes the catch log's checks."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- predictions ---------------------------------------------------------------------------------------


class Ranked(BaseModel):
    label: str
    prob: float


class PredictionOut(BaseModel):
    """One answer, as `fishcore predict --json` gives it."""

    file: str
    top: list[Ranked]
    verdict: Literal["confident", "uncertain", "not_a_fish"]
    reason: str
    distance: float | None
    fish_likeness: float | None
    set: list[Ranked] = Field(description="the prediction set: the species it is one of, most probable first")
    set_coverage: float | None


class PredictOut(BaseModel):
    photos: list[PredictionOut]
    together: PredictionOut | None = Field(None, description="several shots of one fish, combined (with together=true)")
    entries: list[str] = Field(default_factory=list, description="the catch log entries recorded (with record=true)")
    model: str
    model_checksum: str


# --- the model -----------------------------------------------------------------------------------------


class ModelOut(BaseModel):
    name: str
    folder: str
    version: int
    checksum: str = Field(description="sha256 of the model's card: every entry names the version that answered it")
    package: str = Field(description="the download's ETag (sha256 of the zip)")
    classes: list[str]
    species: dict[str, dict[str, str]] = Field(description="species cards: names in English and Bahasa Indonesia, notes")
    threshold: float
    promise: dict
    prediction_sets: dict
    download: str


# --- sync ----------------------------------------------------------------------------------------------


class WordIn(Strict):
    word: Literal["right", "wrong", "not_fish"]
    species: str | None = Field(None, max_length=SPECIES_MAX, description="with wrong: the species it is")
    by: str = Field("", max_length=SESSION_MAX)
    at: AwareDatetime

    @field_validator("species")
    @classmethod
    def _species(cls, v: str | None) -> str | None:
        return None if v is None else _checked(check_species, v)

    @field_validator("by")
    @classmethod
    def _by(cls, v: str) -> str:
        return _checked(lambda x: plain_text(x, "name", SESSION_MAX), v)

    @field_validator("at")
    @classmethod
    def _at(cls, v: datetime) -> datetime:
        return _checked(lambda x: check_when(x, "at"), v)


class AnswerIn(Strict):
    label: str = Field(min_length=1, max_length=NAME_MAX)
    confidence: float = Field(ge=-1e-5, le=1.00001, description="0 to 1 (float32 rounding just outside is taken)")
    verdict: Literal["confident", "uncertain", "not_a_fish"]
    reason: str = Field(max_length=REASON_MAX)
    top: list[tuple[str, float]] = Field(min_length=1, max_length=TOP_MAX)
    distance: float | None = None
    distance_threshold: float | None = None
    candidates: list[tuple[str, float]] = Field(default_factory=list, max_length=TOP_MAX)
    set_coverage: float | None = Field(None, ge=0, le=1)
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        return _checked(check_label, v)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        return _checked(lambda x: plain_text(x, "reason", REASON_MAX), v)

    @field_validator("top", "candidates")
    @classmethod
    def _ranked(cls, v: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return [tuple(pair) for pair in _checked(lambda x: check_ranked(x, "species"), v)]

    @field_validator("distance", "distance_threshold")
    @classmethod
    def _distance(cls, v: float | None) -> float | None:
        return _checked(lambda x: check_distance(x, "distance"), v)


class EntryIn(Strict):
    id: UUID = Field(description="made on the device: sending the entry again changes nothing")
    taken_at: AwareDatetime = Field(description="when the photo was taken")
    place: str = Field("", max_length=PLACE_MAX)
    model_name: str = Field(min_length=1, max_length=NAME_MAX)
    model_checksum: str = Field(pattern=SHA256, description="the model version that answered (its card's sha256)")
    photo_sha256: str = Field(pattern=SHA256, description="the photo, sent before by PUT /api/v1/photos/{sha256}")
    answer: AnswerIn
    count: int = Field(1, ge=1, le=COUNT_MAX)
    weight_kg: float | None = Field(None, gt=0, le=WEIGHT_MAX_KG)
    words: list[WordIn] = Field(default_factory=list, max_length=100, description="every word given, oldest first")

    @field_validator("place")
    @classmethod
    def _place(cls, v: str) -> str:
        return _checked(check_place, v)

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, v: str) -> str:
        return _checked(lambda x: plain_text(x, "model name", NAME_MAX, required=True), v)

    @field_validator("taken_at")
    @classmethod
    def _taken_at(cls, v: datetime) -> datetime:
        return _checked(lambda x: check_when(x, "taken_at"), v)


class SyncIn(Strict):
    entries: list[EntryIn] = Field(max_length=500)


class SyncOut(BaseModel):
    added: list[str]
    already: list[str]
    words_added: int
    device: str
    server_time: datetime


class PhotosIn(Strict):
    sha256: list[Annotated[str, Field(pattern=SHA256)]] = Field(max_length=2000, description="photos' sha256, hex")


class HaveIn(Strict):
    have: list[Annotated[str, Field(pattern=SHA256)]] = Field(
        max_length=2000, description="the model parts (model.json's parts, by sha256) the device keeps: left out"
    )


class PhotosOut(BaseModel):
    missing: list[str] = Field(description="the photos the station does not have yet: send these")


class PhotoOut(BaseModel):
    sha256: str
    stored: bool = Field(description="false when the station already had it")


class ChangeOut(BaseModel):
    id: str
    word: str | None
    species: str | None
    word_by: str | None
    word_at: datetime | None
    count: int
    weight_kg: float | None
    updated_at: datetime | None


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    server_time: datetime


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    model: str | None
    catch_log: Literal["ok", "away"]
    waiting: int = Field(description="entries waiting on the station for its database")
