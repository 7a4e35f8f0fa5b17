"""Honest answers beyond the known species: "confident", "uncertain" and "not_a_fish".

A classifier trained on nine species names every photo one of the nine, a dog included. Two signals,
measured against alternatives on ../shared/data (see `./run.sh bench --verdicts`), tell such photos apart:

* familiarity: the cosine distance from a photo's pooled ImageNet backbone features to the nearest of
  the model's own training photos (a 1-nearest-neighbour score). Photos of known species sit close; other
  species, other settings and everyday objects sit far. The threshold is the largest distance of a
  correctly classified validation photo, so known species keep their confident answers.
* fish-likeness: the probability mass the backbone's own ImageNet classifier puts on fish and
  crustaceans. Everyday photos get almost none; it decides between "not a fish" and "a fish I do
  not know" for unfamiliar photos. Its threshold is capped by what the model's own photos get, so a
  model of murky underwater fish never calls its own kind of photo "not a fish".

Both come out of the same forward pass as the class scores (`Scorer`), so a verdict costs no extra
network run; the ImageNet head reuses the frozen stages and recomputes only the fine-tuned ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fishcore.models.net import FishNet
from fishcore.store.model_files import REFERENCE_FILE

CONFIDENT = "confident"
UNCERTAIN = "uncertain"
NOT_A_FISH = "not_a_fish"

# Why a verdict was given (codes; the app and CLI word them).
KNOWN = "known"  # close to the training photos and a confident class score
LOW_CONFIDENCE = "low_confidence"  # looks familiar, but the classes are too close to call
UNFAMILIAR = "unfamiliar"  # fish-like, but unlike every training photo: a species or setting the model does not know
NOT_FISH_LIKE = "not_fish_like"  # neither like the training photos nor like a fish

# What each reason means for the person holding the phone, and what to do about it.
# The verdict's headline, the one wording the station and the phone share (fieldapp/contract/words.json; the
# Indonesian from assets/locales/id.json).
VERDICT_WORDS = {CONFIDENT: "Confident", UNCERTAIN: "Not sure", NOT_A_FISH: "Not a fish I can name"}
REASON_WORDS = {
    KNOWN: "",
    LOW_CONFIDENCE: "Not sure which species: the photo fits more than one it knows. Try another angle, closer, "
    "side on, in good light.",
    UNFAMILIAR: "Looks like a fish, but not like the photos of any species this model knows: it may be a species "
    "or a setting it was not trained on. Add photos of it on My photos and retrain to teach it.",
    NOT_FISH_LIKE: "This does not look like a fish (or not like one the model could judge). Photograph the fish "
    "alone, filling the frame.",
}

# ImageNet-1k classes of fish (0-6, 389-397) and of crustaceans (118-126): the "fish-like" mass.
FISH_LIKE_IMAGENET = tuple(range(0, 7)) + tuple(range(118, 127)) + tuple(range(389, 398))
REFERENCE_PER_CLASS = 30  # training photos per class kept as references (20 to all: same rates on LSFD)
FISH_THRESHOLD_CAP = 0.01  # everyday photos: 95 % of ../shared/data/nonfish get under 0.004
# The distance threshold is this much above the farthest correct validation photo: a small validation split
# sees little of its own tail. LSFD model: val max 0.057, test 99th percentile 0.058, the nearest of 300
# everyday photos 0.075 and of 540 unknown-species photos 0.10.
DISTANCE_MARGIN = 1.25


class Scorer(nn.Module):
    """The model's logits, L2-normalised pooled ImageNet features and the ImageNet fish-likeness, side by side.

    Output columns: [num_classes logits | feature_dim features | 1 fish-likeness]. ``imagenet`` is the
    pretrained backbone (its stages and classifier) or None for a model trained from scratch; then the
    fish-likeness column is 1 (no evidence either way, so never "not a fish"). ``cut`` is the stage the
    model was fine-tuned from: the stages before it are shared, the ImageNet tail recomputes the rest.
    """

    def __init__(self, model: FishNet, imagenet: tuple[list[nn.Module], nn.Module] | None, cut: int) -> None:
        super().__init__()
        self.model = model
        self.cut = max(0, min(cut, len(model.backbone)))
        if imagenet is not None:
            stages, classifier = imagenet
            self.imagenet_tail: nn.Module | None = nn.Sequential(*stages[self.cut :])
            self.imagenet_fc: nn.Module | None = classifier
        else:
            self.imagenet_tail = self.imagenet_fc = None
        self.register_buffer("fish_like", torch.tensor(FISH_LIKE_IMAGENET), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trunk = self.model.backbone[: self.cut](x)
        fmap = self.model.backbone[self.cut :](trunk)
        logits = self.model.head(fmap)
        if self.imagenet_tail is not None and self.imagenet_fc is not None:
            # Familiarity is measured in the pretrained feature space: fine-tuning on a few species pulls
            # every photo towards one of them (an F4K model fine-tuned from stage 10 found 71 % of LSFD
            # photos "familiar" in its own features).
            pooled = self.imagenet_tail(trunk).mean((2, 3))
            imagenet = self.imagenet_fc(pooled)
            fish = torch.softmax(imagenet.float(), dim=1).index_select(1, self.fish_like).sum(1, keepdim=True)
        else:
            pooled = fmap.mean((2, 3))
            fish = torch.ones_like(logits[:, :1])  # shaped from the batch, so an exported graph keeps it dynamic
        features = F.normalize(pooled.float(), dim=1)
        return torch.cat([logits.float(), features, fish.float()], dim=1)


@dataclass
class Scores:
    """What the Scorer says about a batch of photos, split into its parts."""

    logits: torch.Tensor  # (n, classes)
    features: np.ndarray  # (n, dim), unit length
    fish: np.ndarray  # (n,)

    @classmethod
    def split(cls, out: torch.Tensor, num_classes: int) -> Scores:
        return cls(out[:, :num_classes], out[:, num_classes:-1].numpy(), out[:, -1].numpy())


@dataclass
class OpenSet:
    """The reference features and the two thresholds a model's verdicts use (stored with the model)."""

    reference: np.ndarray  # (n, dim) float16, unit length
    distance_threshold: float
    fish_threshold: float

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Cosine distance to the nearest reference photo."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        sims = features.astype(np.float32) @ self.reference.astype(np.float32).T
        return (1.0 - sims.max(axis=1)).astype(np.float32)

    def card_entry(self) -> dict:
        return {
            "method": "1-NN cosine distance to training photos + ImageNet fish-likeness",
            "reference_file": REFERENCE_FILE,
            "reference_photos": len(self.reference),
            "distance_threshold": self.distance_threshold,
            "fish_threshold": self.fish_threshold,
        }


def judge(
    confidence: float, distance: float | None, fish: float | None, threshold: float, openset: OpenSet | None
) -> tuple[str, str]:
    """(verdict, reason) for one photo; without an open-set profile only the confidence decides."""
    familiar = openset is None or distance is None or distance <= openset.distance_threshold
    if familiar:
        return (CONFIDENT, KNOWN) if confidence >= threshold else (UNCERTAIN, LOW_CONFIDENCE)
    if fish is not None and fish < openset.fish_threshold:
        return NOT_A_FISH, NOT_FISH_LIKE
    return UNCERTAIN, UNFAMILIAR


def reference_indices(targets: Sequence[int], per_class: int = REFERENCE_PER_CLASS, seed: int = 0) -> list[int]:
    """Up to per_class training photos of each class, chosen at random but reproducibly."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    chosen: list[int] = []
    for idx in by_class.values():
        chosen += sorted(rng.permutation(idx)[:per_class].tolist())
    return sorted(chosen)


def fit_openset(reference: Scores, validation: Scores, val_targets: Sequence[int]) -> OpenSet:
    """Thresholds from the model's own photos only (no outside photos are needed or used).

    distance: the largest distance of a correctly classified validation photo times DISTANCE_MARGIN (so
    known species keep their confident answers); without validation photos, the largest leave-one-out
    distance among the references, times the same margin. fish: the 1st percentile of the model's own
    photos, at most FISH_THRESHOLD_CAP.
    """
    ref = reference.features.astype(np.float16)
    profile = OpenSet(ref, 0.0, 0.0)
    targets = np.asarray(val_targets)
    if len(targets):
        pred = validation.logits.argmax(1).numpy()
        correct = pred == targets
        dist = profile.distances(validation.features)
        pool = dist[correct] if correct.any() else dist
        profile.distance_threshold = float(pool.max()) * DISTANCE_MARGIN
    elif len(ref) > 1:
        sims = ref.astype(np.float32) @ ref.astype(np.float32).T
        np.fill_diagonal(sims, -1.0)
        profile.distance_threshold = float((1.0 - sims.max(axis=1)).max()) * DISTANCE_MARGIN
    else:
        profile.distance_threshold = 1.0
    own_fish = np.concatenate([reference.fish, validation.fish])
    profile.fish_threshold = float(min(FISH_THRESHOLD_CAP, np.quantile(own_fish, 0.01))) if len(own_fish) else 0.0
    return profile

