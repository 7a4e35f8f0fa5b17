"""The near-copy rule, in one place: two photos are near-copies when their perceptual hashes (flip- and
rotation-invariant, ``fishcore.data.phash``) differ in at most NEAR_COPY_BITS of 64 bits.

The split keeps near-copies on one side, dataset health puts them in one fold and flags those filed under
two species, the catch log's review queue shows them as one item, and My photos warns about them on import:
all through these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from fishcore.config import NEAR_COPY_BITS

__all__ = ["NEAR_COPY_BITS", "Groups", "distances", "first_near_copy", "near_copy_groups", "near_copy_pairs"]


def _array(hashes: Iterable[int] | np.ndarray) -> np.ndarray:
    if isinstance(hashes, np.ndarray) and hashes.dtype == np.uint64:
        return hashes
    return np.asarray([int(h) for h in hashes], dtype=np.uint64)


def distances(hashes: Sequence[int] | np.ndarray, value: int) -> np.ndarray:
    """Hamming distance of every hash to ``value``."""
    x = np.bitwise_xor(_array(hashes), np.uint64(value))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def first_near_copy(hashes: Sequence[int] | np.ndarray, value: int, bits: int = NEAR_COPY_BITS) -> int | None:
    """The index of the closest hash within ``bits`` of ``value``, or None."""
    if not len(hashes):
        return None
    dist = distances(hashes, value)
    i = int(np.argmin(dist))
    return i if dist[i] <= bits else None


def near_copy_pairs(hashes: Sequence[int], bits: int = NEAR_COPY_BITS, chunk: int = 2048) -> list[tuple[int, int]]:
    """Every pair (i, j), i < j, of near-copies (vectorised in blocks of ``chunk`` rows, so memory stays small)."""
    h = _array(hashes)
    out: list[tuple[int, int]] = []
    for start in range(0, len(h), chunk):
        rows = h[start : start + chunk]
        xor = rows[:, None] ^ h[None, :]
        dist = np.unpackbits(xor.view(np.uint8), axis=-1).reshape(len(rows), len(h), 64).sum(-1)
        for a, b in zip(*np.nonzero(dist <= bits), strict=True):
            i, j = start + int(a), int(b)
            if i < j:
                out.append((i, j))
    return out


class Groups:
    """Union-find over n items: join(a, b) puts them in one group; ids() gives each item's group (its smallest member)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def ids(self) -> list[int]:
        return [self.find(i) for i in range(len(self.parent))]


def near_copy_groups(
    hashes: Sequence[int | None], bits: int = NEAR_COPY_BITS, within: Sequence[str] | None = None, groups: Groups | None = None
) -> list[int]:
    """Group id per item: near-copies share one (transitively: a chain of near-copies is one group).

    ``within``: a key per item (a species); only items with the same key are joined. A None hash is
    nobody's copy. ``groups``: join into this union-find (a caller adding rules of its own) instead of a new one.
    """
    groups = groups or Groups(len(hashes))
    known = [i for i, h in enumerate(hashes) if h is not None]
    parts: dict[str, list[int]] = {}
    for i in known:
        parts.setdefault("" if within is None else within[i], []).append(i)
    for members in parts.values():
        for a, b in near_copy_pairs([hashes[i] for i in members], bits):
            groups.join(members[a], members[b])
    return groups.ids()
