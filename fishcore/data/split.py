"""Splitting a scanned dataset into train, validation and test without leaking near-copies: photos whose
perceptual hashes are near-copies (fishcore.data.nearcopy), or whose names share a --group-pattern key, form
one group, and a group goes to one side whole. Stratified per species and seeded."""

from __future__ import annotations

import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fishcore.config import DataConfig
from fishcore.data.nearcopy import Groups, near_copy_groups
from fishcore.data.scan import DatasetScan, ImageItem
from fishcore.errors import DatasetError

# --- splitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """File lists of a train/validation/test split, relative to the dataset root (test may be elsewhere)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    groups: int = 0  # how many near-duplicate groups the images formed
    test_root: str | None = None  # set when the test images come from a separate folder
    # The group of each photo of the dataset (path -> id): training uses it, the card does not keep it.
    group_of: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
            "groups": self.groups,
            "test_root": self.test_root,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(
            train=tuple(data.get("train", ())),
            val=tuple(data.get("val", ())),
            test=tuple(data.get("test", ())),
            groups=int(data.get("groups", 0)),
            test_root=data.get("test_root"),
        )


def label_of(rel_path: str) -> str:
    """The class of a dataset-relative path: its first folder."""
    return rel_path.split("/", 1)[0]


def group_items(items: list[ImageItem], cfg: DataConfig) -> list[int]:
    """Group id per item: near-copies of one species (the near-copy rule at cfg.duplicate_distance) and
    files of one species whose names give the same --group-pattern key share a group."""
    groups = Groups(len(items))
    if cfg.group_near_duplicates and items:
        near_copy_groups([item.phash for item in items], cfg.duplicate_distance, [item.label for item in items], groups)
    if cfg.group_pattern:  # a valid pattern with a group: DataConfig checked it
        pattern = re.compile(cfg.group_pattern)
        first_with_key: dict[tuple[str, str], int] = {}
        for i, item in enumerate(items):
            match = pattern.search(item.path.rsplit("/", 1)[-1])
            if match:
                groups.join(first_with_key.setdefault((item.label, match.group(1)), i), i)
    return groups.ids()


def _allocate(n_groups_sizes: list[int], targets: list[int]) -> list[int]:
    """Assign groups (in order) to splits so each split's image count approaches its target."""
    filled = [0] * len(targets)
    out = []
    for size in n_groups_sizes:
        # The split with the largest remaining need takes the group; ties go to the first (test, val).
        need = [t - f for t, f in zip(targets, filled, strict=True)]
        k = max(range(len(targets)), key=lambda j: (need[j], -j))
        out.append(k)
        filled[k] += size
    return out


def split_dataset(result: DatasetScan, cfg: DataConfig, test_scan: DatasetScan | None = None) -> Split:
    """Stratified, seeded train/val/test split that keeps each near-duplicate group on one side."""
    test_fraction = 0.0 if test_scan is not None else cfg.test_fraction
    if cfg.val_fraction + test_fraction >= 1:
        raise DatasetError("validation and test fractions leave nothing to train on")
    groups = group_items(result.items, cfg)
    members: dict[int, list[ImageItem]] = defaultdict(list)
    for item, g in zip(result.items, groups, strict=True):
        members[g].append(item)
    by_label: dict[str, list[list[ImageItem]]] = defaultdict(list)
    for g in sorted(members):
        by_label[members[g][0].label].append(members[g])
    rng = random.Random(cfg.seed)
    parts: dict[str, list[str]] = {"test": [], "val": [], "train": []}
    for label in sorted(by_label):
        label_groups = by_label[label]
        rng.shuffle(label_groups)
        n = sum(len(g) for g in label_groups)
        n_test = round(n * test_fraction)
        n_val = round(n * cfg.val_fraction)
        targets = [n_test, n_val, n - n_test - n_val]
        for grp, k in zip(label_groups, _allocate([len(g) for g in label_groups], targets), strict=True):
            parts[("test", "val", "train")[k]].extend(item.path for item in grp)
    test = sorted(parts["test"]) if test_scan is None else sorted(i.path for i in test_scan.items)
    return Split(
        train=tuple(sorted(parts["train"])),
        val=tuple(sorted(parts["val"])),
        test=tuple(test),
        groups=len(members),
        test_root=str(test_scan.root) if test_scan is not None else None,
        group_of={item.path: g for item, g in zip(result.items, groups, strict=True)},
    )


def resolve(root: str | os.PathLike, rel_paths: Iterable[str]) -> list[tuple[Path, str]]:
    """(absolute path, label) for dataset-relative paths, failing clearly if any file is gone."""
    root = Path(root)
    out = []
    missing = []
    for rel in rel_paths:
        path = root / rel
        if not path.is_file():
            missing.append(rel)
        out.append((path, label_of(rel)))
    if missing:
        raise DatasetError(
            f"{len(missing)} file(s) of the saved split are missing under {root} (first: {missing[0]}); "
            "is this the folder the model was trained on?"
        )
    return out
