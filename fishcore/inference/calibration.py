"""Honest confidences: what a model's probabilities mean, decided on photos it never trained on.

- a softmax temperature fitted on held-out logits, and the one calibrated softmax;
- the confidence threshold chosen per model so that "confident" keeps a stated promise (at least
  PROMISED_PRECISION of confident answers right), with a statistical margin for how few held-out
  photos back it (`choose_threshold`);
- prediction sets with a stated coverage for the answers that are not confident: split conformal
  prediction (`fit_prediction_sets`, `prediction_set`).

"Held-out" means photos the model (or, for out-of-fold predictions, the model of that fold) never
trained on: its validation split, and where training can afford it, out-of-fold predictions over
the training photos (fishcore.training.heldout). `./run.sh bench --promise` compares the ways
measured on F4K and EGU (docs/verdicts.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

PROMISED_PRECISION = 0.95  # "confident" answers right at least this often
PROMISE_LEVEL = 0.9  # ... with this much confidence, given how many held-out photos back it
# Never more lenient than the fixed threshold the verdicts were measured with: held-out photos are all of
# known species, so they say nothing about unknown species that pass the familiarity check.
THRESHOLD_FLOOR = 0.6
SET_COVERAGE = 0.9  # prediction sets hold the right species this often


def calibrated_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T): what every prediction and evaluation reports as a probability."""
    return torch.softmax(logits.float() / temperature, dim=1)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature T minimising the NLL of softmax(logits / T): makes confidences honest (Guo et al. 2017)."""
    if len(targets) == 0:
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)
    loss_fn = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(logits.float() / log_t.exp(), targets)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    # A validation set with no mistakes drives T towards 0 (ever sharper); never sharpen more than 2x,
    # so photos unlike the training data are not reported with inflated confidence.
    return min(max(t, 0.5), 10.0) if math.isfinite(t) else 1.0


def precision_lower_bound(right: float, n: float, level: float) -> float:
    """One-sided Clopper-Pearson lower bound of a proportion: right of n, true share >= this with `level` confidence.

    ``right`` and ``n`` may be effective counts (not whole numbers) when photos come in correlated groups.
    """
    if n <= 0 or right <= 0:
        return 0.0
    from scipy.stats import beta

    return float(beta.ppf(1.0 - level, right, n - right + 1))


def effective_sizes(groups: np.ndarray) -> np.ndarray:
    """Kish's effective sample size of the first i + 1 rows, for every i: n^2 / sum of squared group sizes.

    Photos of one group (frames of a video, near-copies) are nearly one observation: a group of g photos
    counts as about one, and photos each in a group of their own count fully.
    """
    sizes: dict = {}
    squares, out = 0, np.empty(len(groups))
    for i, g in enumerate(groups):
        c = sizes.get(g, 0)
        sizes[g] = c + 1
        squares += 2 * c + 1
        out[i] = (i + 1) ** 2 / squares
    return out


@dataclass
class Promise:
    """The threshold a model's "confident" uses, and what it was chosen for and on."""

    threshold: float
    precision: float  # the promise: share of confident answers right
    level: float  # confidence of the margin (0: chosen on the held-out share itself, no margin)
    backed: bool  # the held-out photos back the promise at `level` (False: too few, or too many mistakes)
    photos: int  # held-out predictions it was decided on
    right: int  # of them, answered right
    confident: int  # at the threshold
    confident_right: int
    bound: float  # lower bound of the confident answers' precision at the threshold (groups counted as one)
    method: str = ""
    groups: int = 0  # distinct groups among the held-out photos (tracks, videos, near-copies; a photo alone is one)
    # (threshold, confident, confident right) on the held-out photos at every 0.01: what the slider says
    curve: list[list[float]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Share of the held-out answers that are confident at the threshold (selective classification's coverage)."""
        return self.confident / self.photos if self.photos else 0.0

    def card_entry(self) -> dict:
        return {**asdict(self), "coverage": round(self.coverage, 4)}

    @classmethod
    def from_card(cls, entry: dict | None) -> Promise | None:
        """The card's promise; None when there is none, or when it is incomplete (a card edited by hand)."""
        return _from_entry(cls, entry)

    def at(self, threshold: float) -> tuple[int, int]:
        """(confident, confident right) on the held-out photos at a threshold (the nearest 0.01 at or above it)."""
        for t, n, k in self.curve:
            if t >= threshold - 1e-9:
                return int(n), int(k)
        return 0, 0


def _from_entry(cls, entry):
    if not isinstance(entry, dict) or not entry:
        return None
    known = set(cls.__dataclass_fields__)
    try:
        return cls(**{k: v for k, v in entry.items() if k in known})
    except TypeError:
        return None


def confidence_curve(confidence: np.ndarray, correct: np.ndarray) -> list[list[float]]:
    """(threshold, confident, confident right) at thresholds 0.00, 0.01, ..., 1.00."""
    rows = []
    for t in np.round(np.arange(0, 101) / 100, 2):
        accepted = confidence >= t
        rows.append([float(t), int(accepted.sum()), int(correct[accepted].sum())])
    return rows


def choose_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    precision: float = PROMISED_PRECISION,
    level: float = PROMISE_LEVEL,
    floor: float = THRESHOLD_FLOOR,
    method: str = "",
    sequential: bool = False,
    groups: np.ndarray | None = None,
) -> Promise:
    """The lowest threshold at which confident answers keep the promise on held-out predictions.

    At a threshold, the answers at or above it must have a one-sided Clopper-Pearson lower bound of their
    precision of at least ``precision`` (``level`` 0: their share itself). With ``groups`` (one id per
    answer), the bound is taken on Kish's effective number of answers: frames of one video, or
    near-copies, count as about one, so a model is not trusted for having seen one fish many times. The
    lowest threshold that passes is chosen; ``sequential`` instead descends from the most confident answer and stops at the first
    threshold that fails after one passed (fixed-sequence testing, as in Learn-then-Test, Angelopoulos et
    al. 2021: stricter, one early mistake ends it). Never below ``floor``. When none passes, the promise is
    not backed: the threshold is then the lowest at which the held-out share itself keeps it (or above
    every held-out confidence), and ``backed`` says so.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-confidence, kind="stable")
    conf, hit = confidence[order], correct[order]
    right_so_far = np.cumsum(hit)
    group_ids = np.arange(len(conf)) if groups is None else np.asarray(groups)[order]
    n_eff = effective_sizes(group_ids)

    def bound(i: int) -> float:  # the answers 0..i (conf >= conf[i]), ties included
        j = int(np.searchsorted(-conf, -conf[i], side="right")) - 1
        n, k = j + 1, int(right_so_far[j])
        return precision_lower_bound(k / n * n_eff[j], n_eff[j], level) if level > 0 else k / n

    chosen = None
    for i in range(len(conf)):
        if conf[i] < floor:
            break
        if bound(i) >= precision:
            # Every threshold above the next lower held-out confidence accepts the same held-out answers: the
            # lowest of them (or the floor) is chosen, so a gap with no held-out answers is not held against it.
            below = conf[np.searchsorted(-conf, -conf[i], side="right") :]
            chosen = float(below[0]) + 1e-6 if len(below) and below[0] >= floor else floor
        elif sequential and chosen is not None:
            break
    backed = chosen is not None
    if not backed and level > 0:  # too few held-out photos for the margin: the plain share, said so
        plain = choose_threshold(confidence, correct, precision, 0.0, floor, sequential=sequential, groups=groups)
        chosen = plain.threshold if plain.backed else None
    if chosen is None:
        chosen = float(min(1.0, conf[0] + 1e-6)) if len(conf) and conf[0] >= floor else floor
    threshold = math.ceil(max(floor, chosen) * 1e6) / 1e6
    accepted = confidence >= threshold
    n, k = int(accepted.sum()), int(correct[accepted].sum())
    eff = float(n_eff[n - 1]) if n else 0.0  # the accepted answers are the n most confident
    share = k / n if n else 0.0
    final_bound = precision_lower_bound(share * eff, eff, level) if level > 0 else share
    return Promise(
        threshold=threshold,
        precision=precision,
        level=level,
        backed=backed,
        photos=len(confidence),
        groups=len(set(group_ids.tolist())),
        right=int(correct.sum()),
        confident=n,
        confident_right=k,
        bound=round(final_bound, 4),
        method=method,
        curve=confidence_curve(confidence, correct),
    )


# --- prediction sets -------------------------------------------------------------------------------------


@dataclass
class SetRule:
    """Split conformal prediction (the LAC score 1 - p of the true species): a set holds every species with
    probability >= 1 - quantile, and always the top one. Holds the right species `coverage` of the time on
    photos like the held-out ones (exchangeable), whatever the model."""

    coverage: float
    quantile: float
    photos: int
    method: str = "split conformal prediction, score 1 - p(true species)"

    def card_entry(self) -> dict:
        return asdict(self)

    @classmethod
    def from_card(cls, entry: dict | None) -> SetRule | None:
        """The card's set rule; None when there is none, or when it is incomplete (a card edited by hand)."""
        return _from_entry(cls, entry)

    def members(self, probs: np.ndarray) -> np.ndarray:
        """Indices of the set, most probable first."""
        order = np.argsort(-probs, kind="stable")
        keep = probs[order] >= 1.0 - self.quantile - 1e-12
        keep[0] = True
        return order[keep]


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The ceil((n + 1) coverage) / n empirical quantile of the held-out scores (1.0 when too few photos)."""
    n = len(scores)
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return 1.0  # every species: n held-out photos cannot back this coverage
    return float(np.sort(scores)[rank - 1])


def fit_prediction_sets(probs: np.ndarray, targets: np.ndarray, coverage: float = SET_COVERAGE) -> SetRule:
    """The set rule from calibrated held-out probabilities and their true species."""
    probs, targets = np.asarray(probs), np.asarray(targets, dtype=int)
    scores = 1.0 - probs[np.arange(len(targets)), targets] if len(targets) else np.zeros(0)
    return SetRule(coverage=coverage, quantile=round(conformal_quantile(scores, coverage), 6), photos=len(targets))
