"""The review queue: which entries to confirm first.

Ranking: a confirmation teaches most where the model was least sure and where the photo is least like
its training photos, so each unconfirmed entry scores (1 - confidence) + 0.5 x (distance / the model's
"unfamiliar" distance, capped at 2). Near-copies (the same photo, or the near-copy rule of
fishcore.data.nearcopy: frames of one fish) are one item, led by its highest-scoring entry, so the queue
is not twenty views of one fish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fishcore.data.nearcopy import near_copy_groups
from fishcore.store.catchlog.records import Entry

UNFAMILIAR_WEIGHT = 0.5


def review_score(confidence: float, distance: float | None, threshold: float | None) -> float:
    """How much confirming this answer should teach: unsure and unfamiliar answers first."""
    unfamiliar = 0.5 if distance is None or not threshold else min(distance / threshold, 2.0)
    return (1.0 - confidence) + UNFAMILIAR_WEIGHT * unfamiliar


def review_order(scores: Sequence[float], hashes: Sequence[int | None]) -> list[list[int]]:
    """Indices grouped by the near-copy rule (fishcore.data.nearcopy; a None hash is nobody's copy), each group
    best score first, the groups by their best score, best first."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(near_copy_groups(hashes)):
        members.setdefault(g, []).append(i)
    groups = [sorted(m, key=lambda i: -scores[i]) for m in members.values()]
    return sorted(groups, key=lambda g: -scores[g[0]])


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
