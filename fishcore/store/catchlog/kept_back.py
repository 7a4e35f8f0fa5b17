"""The field test set: every FIELD_TEST_EVERY-th confirmed photo, chosen by its content hash so that an entry's
place in it never moves. Those entries are never taught; they measure each model version on the users' own
photos. The rest of the confirmed fish are what teaching adds to a dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

from fishcore.store.catchlog.records import Entry

FIELD_TEST_EVERY = 5


def is_field_test(photo_sha256: str) -> bool:
    """Whether a photo belongs to the field test set (fixed by its content hash)."""
    return int(photo_sha256[:8], 16) % FIELD_TEST_EVERY == 0


def used_as(e: Entry) -> str:
    """What an entry is to training: 'field test' (never taught), 'taught' (training data) or 'not taught yet'."""
    return "field test" if is_field_test(e.photo_sha256) else "taught" if e.taught_to else "not taught yet"


def teachable(items: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(entries to teach, entries held back as the field test set): confirmed fish, not taught yet."""
    confirmed = [e for e in items if e.word in ("right", "wrong") and e.species and e.taught_to is None]
    return [e for e in confirmed if not is_field_test(e.photo_sha256)], [e for e in confirmed if is_field_test(e.photo_sha256)]


def kept_back_set(items: Sequence[Entry]) -> list[Entry]:
    """The confirmed fish entries of the field test set, one per photo (the newest word counts)."""
    seen: dict[str, Entry] = {}
    for e in items:
        if e.word in ("right", "wrong") and e.species and is_field_test(e.photo_sha256) and e.photo_sha256 not in seen:
            seen[e.photo_sha256] = e
    return list(seen.values())
