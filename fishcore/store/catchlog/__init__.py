"""The catch log: every answer Predict (or `predict --log`) gives, with the photo and the user's word on it.

A real database through SQLAlchemy Core: SQLite in the workspace by default (one file, WAL mode, made
on first use), or PostgreSQL for an office where several app servers or landing sites share one log
(``FISHCORE_DB_URL``, psycopg 3). One module per job:

- ``checks.py``: what a user or device may write (place, species, count, weight, ...), checked first
- ``records.py``: Answer (what the model said), Entry (what is read back), LogFilter
- ``engine.py``: engines per URL, Alembic migrations (``migrations/versions``), "the database is away"
- ``log.py``: CatchLog, reading and writing, the photo store and the spool
- ``queue.py``: the review queue; ``kept_back.py``: the photos never taught, and what teaching may take
- ``summaries.py``: fish per species per day, accuracy per week, CSV

This package's names below are the ones the rest of fishcore uses.
"""

from fishcore.store.catchlog.checks import (
    VERDICT_CODES,
    WORDS,
    CatchLogError,
    check_count,
    check_place,
    check_species,
    check_weight,
)
from fishcore.store.catchlog.engine import HEAD, dispose_engines, migrate, schema_version
from fishcore.store.catchlog.log import CatchLog
from fishcore.store.catchlog.records import Answer, Entry, LogFilter, Recorded
from fishcore.store.catchlog.summaries import NOT_SURE, accuracy_by_week, counted_as, counts_per_day, to_csv

__all__ = [
    "HEAD", "NOT_SURE", "VERDICT_CODES", "WORDS", "Answer", "CatchLog", "CatchLogError", "Entry", "LogFilter", "Recorded",
    "accuracy_by_week", "check_count", "check_place", "check_species", "check_weight", "counted_as", "counts_per_day",
    "dispose_engines", "migrate", "schema_version", "to_csv",
]  # fmt: skip
