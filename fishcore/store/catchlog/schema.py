"""The catch log's tables (SQLAlchemy Core), as of the newest migration in migrations/versions/.

The migrations make the schema; these tables only describe it for queries. tests/test_catchlog.py
checks that a database migrated from empty has exactly these columns.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, func

metadata = MetaData()

# One row per distinct photo (by content): the same photo logged twice is stored once.
photos = Table(
    "photos",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("file", String(80), nullable=False),  # relative to the log's photo folder: ab/abcdef....jpg
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("phash", String(16), nullable=True),  # 64-bit perceptual hash, hex (version 3): near-copies
)

# One row per answer given (Predict, `predict --log`). The id is made by the writer (a UUID), so an entry
# written once from the spool and once again is still one entry.
entries = Table(
    "entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("place", String(200), nullable=False, default=""),
    Column("session", String(100), nullable=False, default=""),
    Column("model_name", String(200), nullable=False),
    Column("model_checksum", String(64), nullable=False),
    Column("photo_sha256", String(64), ForeignKey("photos.sha256"), nullable=False),
    Column("top", Text, nullable=False),  # JSON: [[species, probability], ...], best first
    Column("label", String(200), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("weight_kg", Float, nullable=True),
    # The user's latest word on it (version 2): right, wrong (with the species it is) or not_fish.
    Column("word", String(20), nullable=True, index=True),
    Column("true_species", String(200), nullable=True),
    Column("word_by", String(100), nullable=True),
    Column("word_at", DateTime(timezone=True), nullable=True),
    # Version 3: how unlike the model's training photos the photo was, and where the entry was taught.
    Column("distance", Float, nullable=True),
    Column("distance_threshold", Float, nullable=True),
    Column("taught_to", String(200), nullable=True),
    Column("taught_at", DateTime(timezone=True), nullable=True),
    # Version 4: the prediction set ("one of: A, B") with its coverage, and the threshold the verdict used.
    Column("candidates", Text, nullable=True),  # JSON: [[species, probability], ...], most probable first
    Column("set_coverage", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    # Version 5: the device an entry came from (None: this station's own pages or command line), and when the
    # station last changed it (what a device fetches back with since=).
    Column("device", String(100), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Index("ix_entries_device_updated_at", "device", "updated_at"),
)

# Every word ever given, oldest first (version 2): changing one's mind keeps the earlier word.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", String(36), ForeignKey("entries.id"), nullable=False, index=True),
    Column("word", String(20), nullable=False),
    Column("true_species", String(200), nullable=True),
    Column("word_by", String(100), nullable=False, default=""),
    Column("word_at", DateTime(timezone=True), nullable=False),
)
# Version 7: a word is kept once, however many copies of a sync arrive together.
Index("ux_feedback_once", feedback.c.entry_id, feedback.c.word, func.coalesce(feedback.c.true_species, ""),
      feedback.c.word_at, unique=True)  # fmt: skip

# The devices a station lets in (version 5): one token per phone or landing site, kept only as its sha256.
devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_seen", DateTime(timezone=True), nullable=True),
    # Version 6: the model version (card checksum) the device last took from the station, and when.
    Column("model_checksum", String(64), nullable=True),
    Column("model_at", DateTime(timezone=True), nullable=True),
)
