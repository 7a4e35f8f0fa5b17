"""The catch log on a real database: the same tests on SQLite and on a PostgreSQL server started for the run."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image

from fishcore.errors import ImageError
from fishcore.store.catchlog import (
    HEAD,
    Answer,
    CatchLog,
    CatchLogError,
    LogFilter,
    accuracy_by_week,
    counts_per_day,
    dispose_engines,
    migrate,
    schema_version,
    to_csv,
)
from fishcore.store.catchlog.schema import metadata

from conftest import REPO, class_image

ANSWER = Answer("Sea Bass", 0.91, "confident", "known", [("Sea Bass", 0.91), ("Trout", 0.05)])
UNSURE = Answer("Trout", 0.41, "uncertain", "low_confidence", [("Trout", 0.41), ("Sea Bass", 0.38)], 0.1, 0.2,
                [("Trout", 0.41), ("Sea Bass", 0.38)], 0.9, 0.72)  # fmt: skip


def photo(seed: int = 0, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    class_image(seed % 4, seed, 64).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request, tmp_path):
    """A fresh, empty catch log on each backend (a new database per test on the one PostgreSQL server)."""
    if request.param == "sqlite":
        yield CatchLog(f"sqlite:///{tmp_path / 'log.sqlite'}", tmp_path / "catchlog")
        dispose_engines()
        return
    server = request.getfixturevalue("postgres_server")
    import psycopg

    name = f"t{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=fishcore dbname=fishcore", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield CatchLog(server.url.rsplit("/", 1)[0] + f"/{name}", tmp_path / "catchlog")
    dispose_engines()


def test_a_database_migrates_from_empty_and_from_the_first_version(log):
    from sqlalchemy import inspect, text

    from fishcore.store.catchlog.engine import engine_for

    migrate(log.url, "0001")
    assert schema_version(log.url) == "0001"
    engine = engine_for(log.url)
    with engine.begin() as c:  # an entry as version 1 wrote it: no word columns yet
        c.execute(text("INSERT INTO photos VALUES ('" + "a" * 64 + "', 'aa/x.jpg', 4, 4, 10, :t)"), {"t": datetime.now(UTC)})
        c.execute(
            text(
                "INSERT INTO entries (id, created_at, place, session, model_name, model_checksum, photo_sha256, top, label,"
                " confidence, verdict, reason, count) VALUES ('old', :t, 'Muara Angke', '', 'm', 'c', '" + "a" * 64 + "',"
                " '[[\"Trout\", 0.9]]', 'Trout', 0.9, 'confident', 'known', 3)"
            ),
            {"t": datetime.now(UTC)},
        )
    migrate(log.url)
    assert schema_version(log.url) == HEAD
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in metadata.tables}
    assert columns == {name: {c.name for c in table.columns} for name, table in metadata.tables.items()}
    [old] = log.entries()
    assert (old.id, old.place, old.count, old.word) == ("old", "Muara Angke", 3, None)
    log.set_word("old", "right", who="tester")
    assert log.entries()[0].word == "right"


def test_every_answer_is_recorded_with_its_photo_once_and_the_users_word(log):
    first = log.record(photo(1), ANSWER, "lsfd", "c1" * 32, place="Muara Angke", count=3, weight_kg="1,5", session="phone")
    again = log.record(photo(1), UNSURE, "lsfd", "c1" * 32, place="Muara Angke")
    other = log.record(photo(2), UNSURE, "lsfd-v2", "c2" * 32, place="Cilincing")
    assert not any(r.spooled for r in (first, again, other))
    stored = list(log.photos.rglob("*.jpg"))
    assert len(stored) == 2  # the same photo twice is stored once
    items = log.entries()
    assert [e.id for e in items] == [other.entry_id, again.entry_id, first.entry_id]  # newest first
    e = next(e for e in items if e.id == first.entry_id)
    assert (e.label, e.verdict, e.count, e.weight_kg) == ("Sea Bass", "confident", 3, 1.5)
    assert (e.place, e.session) == ("Muara Angke", "phone")
    assert e.top[0] == ("Sea Bass", 0.91) and e.created_at.tzinfo is not None
    assert e.candidates == [] and e.set_coverage is None and e.threshold is None  # said nothing of a set
    unsure = next(e for e in items if e.id == other.entry_id)
    assert unsure.candidates == [("Trout", 0.41), ("Sea Bass", 0.38)] and (unsure.set_coverage, unsure.threshold) == (0.9, 0.72)
    assert "Trout; Sea Bass" in to_csv([unsure])
    assert log.photo_path(e.photo_sha256).read_bytes() == photo(1)
    # The user's word: wrong and what it is (a new name too), then changed; the history keeps both.
    log.set_word(again.entry_id, "wrong", "Kakap merah", who="Pak Budi")
    log.set_word(again.entry_id, "right", who="Pak Budi")
    log.set_word(other.entry_id, "wrong", "Sea Bass", who="Bu Sri")
    log.set_word(first.entry_id, "not_fish")
    words = {e.id: (e.word, e.true_species, e.word_by) for e in log.entries()}
    assert words[again.entry_id] == ("right", None, "Pak Budi") and words[other.entry_id] == ("wrong", "Sea Bass", "Bu Sri")
    assert [h["word"] for h in log.history(again.entry_id)] == ["wrong", "right"]
    # Filters.
    assert {e.id for e in log.entries(LogFilter(species="Sea Bass"))} == {first.entry_id, other.entry_id}
    assert [e.id for e in log.entries(LogFilter(place="Cilincing"))] == [other.entry_id]
    assert [e.id for e in log.entries(LogFilter(model="lsfd-v2"))] == [other.entry_id]
    assert len(log.entries(LogFilter(verdict="uncertain"))) == 2 and len(log.entries(LogFilter(confirmed=True))) == 3
    assert log.entries(LogFilter(confirmed=False)) == []
    days = sorted({e.created_at.date() for e in log.entries()})  # the entries' own days: the test may cross midnight
    assert len(log.entries(LogFilter(since=days[0], until=days[-1]))) == 3
    assert log.entries(LogFilter(until=days[0] - timedelta(1))) == []
    # Summaries: fish per species per day (not a fish left out), and the model's accuracy on confirmed entries.
    counts = {(r["species"], r["fish"]) for r in counts_per_day(log.entries())}
    assert counts == {("Trout", 1), ("Sea Bass", 1)}
    per_model: dict[str, list[int]] = {}  # summed over weeks: the entries may straddle Monday 00:00
    for w in accuracy_by_week(log.entries()):
        tally = per_model.setdefault(w["model"].split()[0], [0, 0])
        tally[0], tally[1] = tally[0] + w["right"], tally[1] + w["confirmed"]
    assert per_model == {"lsfd": [1, 2], "lsfd-v2": [0, 1]}
    with pytest.raises(CatchLogError, match="no catch log entry"):
        log.set_word("nope", "right")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"photo": b"<html>not a photo</html>"}, None),
        ({"place": "x" * 10_000}, "longer than"),
        ({"place": "Muara\nAngke"}, "control characters"),
        ({"place": "Muara\x00"}, "control characters"),
        ({"weight_kg": -3}, "above 0"),
        ({"weight_kg": "abc"}, "not a number"),
        ({"weight_kg": "inf"}, "above 0"),
        ({"count": 0}, "whole number"),
        ({"count": "2.5"}, "whole number"),
        ({"answer": replace(UNSURE, threshold=1.5)}, "threshold must be from 0 to 1"),
        ({"answer": replace(UNSURE, set_coverage=float("nan"))}, "set coverage must be from 0 to 1"),
    ],
)
def test_bad_input_answers_clearly_and_writes_nothing(log, change, message):
    args = {"photo": photo(3), "answer": ANSWER, "model_name": "m", "model_checksum": "c", **change}
    with pytest.raises(ImageError if message is None else CatchLogError, match=message):
        log.record(**args)
    assert log.entries() == [] and not list(log.photos.rglob("*.*"))


def test_a_species_name_with_a_slash_is_refused(log):
    entry = log.record(photo(4), ANSWER, "m", "c")
    for bad in ("Kakap/merah", "..\\x", ".hidden", "", "a" * 101):
        with pytest.raises(CatchLogError):
            log.set_word(entry.entry_id, "wrong", bad)
    with pytest.raises(CatchLogError, match="one of"):
        log.set_word(entry.entry_id, "maybe")
    assert log.entries()[0].word is None and log.history(entry.entry_id) == []


def test_the_log_never_serves_a_file_outside_its_photo_folder(log, tmp_path):
    entry = log.record(photo(5), ANSWER, "m", "c")
    sha = log.entries()[0].photo_sha256
    assert log.photo_path(sha).is_relative_to(log.photos.resolve())
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    fake = "b" * 64
    (log.photos / "bb").mkdir(parents=True)
    (log.photos / "bb" / f"{fake}.jpg").symlink_to(secret)  # a link planted in the folder points outside
    for bad in ("../../etc/passwd", "/etc/passwd", fake, sha[:10], sha + "/../x"):
        with pytest.raises(CatchLogError):
            log.photo_path(bad)
    assert entry.entry_id


def test_the_csv_export_neutralises_spreadsheet_formulas(log):
    log.record(photo(6), ANSWER, "m", "c", place='=HYPERLINK("http://x")', session="+1")
    text = to_csv(log.entries())
    rows = list(__import__("csv").DictReader(io.StringIO(text)))
    assert rows[0]["place"] == '\'=HYPERLINK("http://x")' and rows[0]["session"] == "'+1"
    assert rows[0]["label"] == "Sea Bass" and rows[0]["top"].startswith("Sea Bass 0.910")


def test_eight_writers_at_once_lose_and_duplicate_nothing(log):
    errors = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                log.record(photo(100 + n * 10 + i), ANSWER, "m", "c", session=f"s{n}")
        except Exception as exc:  # a lost entry would show here or in the count below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    items = log.entries()
    assert len(items) == 80 and len({e.id for e in items}) == 80
    assert {e.session for e in items} == {f"s{n}" for n in range(8)}


def test_when_postgresql_is_down_entries_wait_in_the_spool_and_arrive_once(postgres_server, tmp_path):
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=fishcore dbname=fishcore", autocommit=True) as c:
        c.execute("CREATE DATABASE spooltest")
    log = CatchLog(postgres_server.url.rsplit("/", 1)[0] + "/spooltest", tmp_path / "catchlog")
    assert not log.record(photo(7), ANSWER, "m", "c").spooled
    postgres_server.stop()
    try:
        spooled = [log.record(photo(8 + i), UNSURE, "m", "c", place="offline") for i in range(3)]
        assert all(r.spooled for r in spooled) and log.pending() == 3
        log.set_word(spooled[0].entry_id, "wrong", "Kakap")  # a word on a spooled entry is kept with it
        assert log.flush_spool() == 0 and log.pending() == 3  # still away: nothing is lost or dropped
        with pytest.raises(CatchLogError, match="cannot be reached"):
            log.entries()
    finally:
        postgres_server.start()
    assert log.flush_spool() == 3 and log.pending() == 0 and log.flush_spool() == 0
    items = log.entries()
    assert len(items) == 4 and len({e.id for e in items}) == 4
    moved = next(e for e in items if e.id == spooled[0].entry_id)
    assert (moved.word, moved.true_species, moved.place) == ("wrong", "Kakap", "offline")
    assert [h["word"] for h in log.history(moved.id)] == ["wrong"]
    dispose_engines()


WRITER = """
import io, sys
from PIL import Image
from fishcore.store.catchlog import Answer, CatchLog
log = CatchLog(sys.argv[1], sys.argv[2])
answer = Answer("Trout", 0.8, "confident", "known", [("Trout", 0.8)])
for i in range(100000):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (i % 256, (i // 256) % 256, 7)).save(buf, "PNG")
    log.record(buf.getvalue(), answer, "m", "c", place=f"entry {i}")
    if i == 5:
        print("writing", flush=True)
"""


def test_a_killed_app_leaves_every_entry_whole_or_absent(tmp_path):
    from sqlalchemy import create_engine, text

    url, folder = f"sqlite:///{tmp_path / 'log.sqlite'}", tmp_path / "catchlog"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of writing photos and entries
    proc.wait()
    with create_engine(url).connect() as c:
        assert c.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    log = CatchLog(url, folder)
    items = log.entries()
    assert len(items) >= 6
    for e in items:  # whole: every field there, its photo stored before it and readable
        assert e.place.startswith("entry ") and e.label == "Trout" and e.top == [("Trout", 0.8)]
        Image.open(log.photo_path(e.photo_sha256)).verify()
    log.record(photo(9), ANSWER, "m", "c")  # and it takes new entries
    assert len(log.entries()) == len(items) + 1
    dispose_engines()


def test_dates_in_filters_are_whole_utc_days(log):
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    log.record(photo(10), ANSWER, "m", "c", when=noon)
    log.record(photo(11), ANSWER, "m", "c", when=noon + timedelta(days=1, hours=11, minutes=59))
    assert len(log.entries(LogFilter(since=date(2026, 11, 30), until=date(2026, 11, 30)))) == 1
    assert len(log.entries(LogFilter(since=date(2026, 12, 1)))) == 1
    assert [r["day"] for r in counts_per_day(log.entries())] == ["2026-11-30", "2026-12-01"]


def test_a_distance_rounded_a_hair_below_zero_is_recorded_as_zero(tmp_path):
    """A cosine distance in float32 can come out at -2.4e-05 for a photo the model was trained on: the station's own
    answer is recorded (as 0), while a real negative distance is refused."""
    from fishcore.store.catchlog import Answer, CatchLog, CatchLogError, dispose_engines

    from conftest import class_image

    log = CatchLog(f"sqlite:///{tmp_path / 'log.sqlite'}", tmp_path / "catchlog")
    buf = io.BytesIO()
    class_image(0, 1, 64).save(buf, "PNG")
    done = log.record(buf.getvalue(), Answer("Trout", 0.9, "confident", "known", [("Trout", 0.9)], -2.4e-05, 0.3), "m", "c")
    assert log.get(done.entry_id).distance == 0.0
    with pytest.raises(CatchLogError, match="distance"):
        log.record(buf.getvalue(), Answer("Trout", 0.9, "confident", "known", [("Trout", 0.9)], -0.5, 0.3), "m", "c")
    dispose_engines()
