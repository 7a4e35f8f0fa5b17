"""`./run.sh bench --frozen [ROOT]`: which frozen ImageNet features separate the species best.

Instant mode's recipe (pooled features of the whole frozen backbone, a class-balanced logistic regression
whose strength the validation split's log-loss picks) on the seeded, honest splits of benchmarks/accuracy.py,
with the features changed: MobileNetV2 (the default), EfficientNet-Lite0, both concatenated, and MobileNetV2
on photos letterboxed to a square (the aspect ratio kept, the rest padded with ImageNet's mean colour)
instead of stretched to one as the paper and fishcore do, and MobileNetV2 with its BatchNorm statistics
re-estimated on each split's training photos (AdaBN, a usual cure for a change of setting such as
underwater video). Only clean views of the photos: no augmentation.
Validation decides; the test columns are there to check it. Nothing here asserts.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.accuracy import SETS, BenchSet
from benchmarks.common import measured_on, variants_table

# Name -> (backbones whose pooled features are concatenated, letterbox the photo first).
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "MobileNetV2 (default)": (("mobilenet_v2",), False),
    "EfficientNet-Lite0": (("efficientnet_lite0",), False),
    "both, concatenated": (("mobilenet_v2", "efficientnet_lite0"), False),
    "MobileNetV2, letterboxed": (("mobilenet_v2",), True),
    "MobileNetV2, BatchNorm statistics of the training photos": (("mobilenet_v2+adabn",), False),
}


class _Features:
    """Pooled features per (backbone, letterbox, photo), computed once and shared by every variant and split."""

    def __init__(self, image_size: int = 224) -> None:
        import torch

        from fishcore.data.augment import build_transforms
        from fishcore.models.backbones import get_backbone, load_pretrained_state

        self.size = image_size
        self.transform = build_transforms(None, False, image_size)
        self.trunks: dict[str, torch.nn.Module] = {}
        for name in {b.split("+")[0] for backbones, _ in VARIANTS.values() for b in backbones}:
            spec = get_backbone(name)
            net = spec.builder()
            net.load_state_dict(load_pretrained_state(name)[0])
            self.trunks[name] = torch.nn.Sequential(*spec.stages(net)).eval()
        self.cache: dict[tuple[str, bool, str], np.ndarray] = {}

    def _image(self, path: str, letterbox: bool):
        from PIL import ImageOps

        from fishcore.data.images import load_image_file
        from fishcore.models.imagenet import IMAGENET_MEAN

        image = load_image_file(path, min_size=self.size)
        if letterbox:
            fill = tuple(round(255 * m) for m in IMAGENET_MEAN)
            image = ImageOps.pad(image, (self.size, self.size), color=fill)
        return self.transform(image)

    def adapt(self, train_paths: list[str]) -> None:
        """The "+adabn" trunks that VARIANTS use: a copy whose BatchNorm statistics are re-estimated on these photos."""
        import copy

        import torch

        wanted = {b for backbones, _ in VARIANTS.values() for b in backbones if b.endswith("+adabn")}
        for adapted in wanted:
            trunk = copy.deepcopy(self.trunks[adapted.split("+")[0]])
            for m in trunk.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                    m.momentum = None  # a cumulative average over every batch
            trunk.train()
            with torch.no_grad():
                for start in range(0, len(train_paths), 32):
                    trunk(torch.stack([self._image(p, False) for p in train_paths[start : start + 32]]))
            self.trunks[adapted] = trunk.eval()
        # Features of the previous split's adapted trunks are stale now.
        self.cache = {k: v for k, v in self.cache.items() if k[0] not in wanted}

    def of(self, paths: list[str], backbones: tuple[str, ...], letterbox: bool) -> np.ndarray:
        import torch

        for name in backbones:
            todo = [p for p in paths if (name, letterbox, p) not in self.cache]
            for start in range(0, len(todo), 32):
                chunk = todo[start : start + 32]
                x = torch.stack([self._image(p, letterbox) for p in chunk])
                with torch.inference_mode():
                    pooled = self.trunks[name](x).mean((2, 3)).numpy()
                for p, row in zip(chunk, pooled, strict=True):
                    self.cache[(name, letterbox, p)] = row
        return np.stack([np.concatenate([self.cache[(n, letterbox, p)] for n in backbones]) for p in paths])


def _fit_score(xtr, ytr, gtr, xval, yval, xtest, ytest) -> tuple[float, float]:
    """Instant mode's logistic regression (training/probe.py: standardised, balanced, C by grouped cross-validation):
    val and test macro-F1."""
    from sklearn.metrics import f1_score

    from fishcore.training.probe import fit_probe

    mean, std = xtr.mean(0), xtr.std(0) + 1e-6
    clf = fit_probe((xtr - mean) / std, ytr, gtr, balanced=True)
    val = f1_score(yval, clf.predict((xval - mean) / std), average="macro")
    test = f1_score(ytest, clf.predict((xtest - mean) / std), average="macro")
    return float(val), float(test)


def run_frozen(root: str, sets: tuple[BenchSet, ...] | None = None, log=print) -> str:
    """Every variant on every split of every set present; returns the Markdown table (means over splits)."""
    from fishcore.config import DataConfig
    from fishcore.settings import Paths
    from fishcore.training.pipeline import prepare_data

    root_path = Path(root).expanduser().resolve()
    sets = sets if sets is not None else tuple(s for s in SETS if s.name != "lsfd")
    present = [s for s in sets if (root_path / s.name).is_dir()]
    if not present:
        raise FileNotFoundError(f"none of {', '.join(s.name for s in sets)} is in {root_path}")
    features = _Features()
    began = time.monotonic()
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for bench_set in present:
        for seed in bench_set.seeds:
            data_cfg = DataConfig(group_pattern=bench_set.group_pattern, seed=seed)
            _, _, data = prepare_data(root_path / bench_set.name, data_cfg, Paths.from_env().cache, lambda *a: None)
            parts = [([p for p, _ in s], np.array([t for _, t in s])) for s in (data.train, data.val, data.test)]
            features.adapt(parts[0][0])
            for name, (backbones, letterbox) in VARIANTS.items():
                xs = [features.of(paths, backbones, letterbox) for paths, _ in parts]
                val, test = _fit_score(xs[0], parts[0][1], data.train_groups, xs[1], parts[1][1], xs[2], parts[2][1])
                scores.setdefault((bench_set.name, name), []).append((val, test))
                log(f"{bench_set.name} split {seed} {name}: val {val:.3f} test {test:.3f}")
    names = [s.name for s in present]
    lines = [
        measured_on(f"; data {root_path}; "
        f"command `./run.sh bench --frozen {root} --sets {','.join(names)}`; {time.monotonic() - began:.0f} s in all. "
        "Instant mode's logistic regression on frozen pooled features (clean photos only); macro-F1 as the mean over each set's "
        "seeded splits; the last column averages validation over all sets, which is what decides."),
        "",
    ]
    lines += variants_table("features", list(VARIANTS), names, scores)
    return "\n".join(lines)
