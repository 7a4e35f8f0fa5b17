"""The review queue and the field test set: which entries to confirm first, and which never to train on.

Ranking: a confirmation teaches most where the model was least sure and where the photo is least like
its training photos, so each unconfirmed entry scores (1 - confidence) + 0.5 x (distance / the model's
"unfamiliar" distance, capped at 2). Near-copies (the same photo, or perceptual hashes within
NEAR_COPY_BITS bits: frames of one fish) are one item, led by its highest-scoring entry, so the queue
is not twenty views of one fish.

The field test set is every FIELD_TEST_EVERY-th confirmed photo, chosen by its content hash, so an
entry's place in it never moves: those entries are never taught, and measure each model version on
the users' own photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fishcore.store.catchlog import FIELD_TEST_EVERY, Entry, is_field_test

__all__ = ["FIELD_TEST_EVERY", "is_field_test"]
NEAR_COPY_BITS = 6  # as the dataset split's near-duplicate rule (fishcore.config.DataConfig.duplicate_distance)
UNFAMILIAR_WEIGHT = 0.5


def review_score(confidence: float, distance: float | None, threshold: float | None) -> float:
    """How much confirming this answer should teach: unsure and unfamiliar answers first."""
    unfamiliar = 0.5 if distance is None or not threshold else min(distance / threshold, 2.0)
    return (1.0 - confidence) + UNFAMILIAR_WEIGHT * unfamiliar


def review_order(scores: Sequence[float], hashes: Sequence[int | None], bits: int = NEAR_COPY_BITS) -> list[list[int]]:
    """Indices grouped into near-copy groups (hashes within ``bits``), groups by their best score, best first.

    Greedy from the best score down: each item joins the first group whose lead it is a near-copy of. A None
    hash is never anyone's copy.
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    groups: list[list[int]] = []
    leads: list[int | None] = []
    for i in order:
        h = hashes[i]
        home = None
        if h is not None:
            home = next((g for g, lead in enumerate(leads) if lead is not None and bin(lead ^ h).count("1") <= bits), None)
        if home is None:
            groups.append([i])
            leads.append(h)
        else:
            groups[home].append(i)
    return groups


@dataclass
class QueueItem:
    """One thing to confirm: its lead entry, its near-copies, and its score."""

    lead: Entry
    score: float
    copies: list[Entry] = field(default_factory=list)

    @property
    def entries(self) -> list[Entry]:
        return [self.lead, *self.copies]


def review_queue(items: Sequence[Entry]) -> list[QueueItem]:
    """The unconfirmed entries, best to confirm first, near-copies collapsed."""
    pending = [e for e in items if e.word is None]
    scores = [review_score(e.confidence, e.distance, e.distance_threshold) for e in pending]
    hashes = [int(e.phash, 16) if e.phash else None for e in pending]
    return [QueueItem(pending[g[0]], scores[g[0]], [pending[i] for i in g[1:]]) for g in review_order(scores, hashes)]


def teachable(items: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(entries to teach, entries held back as the field test set): confirmed fish, not taught yet."""
    confirmed = [e for e in items if e.word in ("right", "wrong") and e.species and e.taught_to is None]
    return [e for e in confirmed if not is_field_test(e.photo_sha256)], [e for e in confirmed if is_field_test(e.photo_sha256)]


def field_test_set(items: Sequence[Entry]) -> list[Entry]:
    """The confirmed fish entries of the field test set, one per photo (the newest word counts)."""
    seen: dict[str, Entry] = {}
    for e in items:
        if e.word in ("right", "wrong") and e.species and is_field_test(e.photo_sha256) and e.photo_sha256 not in seen:
            seen[e.photo_sha256] = e
    return list(seen.values())
