"""Fast training: the frozen trunk's output for each image view is computed once and cached.

The frozen stages give the same output for the same input (their BatchNorm statistics are frozen
too), so "fast" mode runs them once per view: the clean view of every image and K augmented views of
each training image, kept in memory and on disk as float16. Training then runs only the unfrozen
stages and the residual head. A second run on the same data, or after adding a few photos, only
computes what is new. The trade-off against "full" mode: augmentation is limited to K fixed draws per
photo instead of a fresh draw every epoch.

The cache key of a view is the image's content hash, the backbone, its weights' sha256, the freeze
point, the image size, and (for augmented views) the augmentation config, K and the view's index.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from fishcore.config import AugmentConfig, to_dict
from fishcore.data.augment import IMAGENET_MEAN, IMAGENET_STD, TransformStages, transform_stages
from fishcore.data.images import load_image_file
from fishcore.errors import ConfigError
from fishcore.inference.engine import Engine
from fishcore.models.config import ModelConfig
from fishcore.models.net import FishNet

Progress = Callable[[int, int], None]

_GLOBAL_RNG = threading.Lock()


def release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only; elsewhere a no-op).

    Decoding photos between onnxruntime calls fragments glibc's heap: without this, resident memory
    grew by about 1 MB per photo during feature extraction (2.4-3.8 GB peak on LSFD instead of 1.4).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# Bumped whenever the way views are made changes (v2: OpenCV affine warp; v3: the trunk's weights rounded to 8 bits),
# so old cache files are not reused.
VIEWS_VERSION = 3


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


class _Trunk(nn.Module):
    """The frozen stages, fed uint8 images: ImageNet normalisation happens inside (and inside the ONNX graph).

    Same numbers as transform_stages(...).finish followed by the stages (to about 1e-5), without a
    float copy of every batch in Python.
    """

    def __init__(self, model: FishNet, pooled: bool = False) -> None:
        super().__init__()
        self.stages = model.backbone[: model.freeze_until]
        # pooled: one C-vector per view (global average pool), what instant mode's linear classifier reads.
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if pooled else nn.Identity()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", mean / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(x.float() * self.scale - self.shift))


class FeatureStore:
    """Trunk features per image (float16), on disk under root and reused across runs; ``pooled`` keeps one vector per view."""

    def __init__(
        self,
        root: str | os.PathLike,
        model: FishNet,
        model_cfg: ModelConfig,
        weights_sha: str | None,
        engine: str = "auto",
        pooled: bool = False,
    ) -> None:
        if not model.trunk_is_constant:
            raise ConfigError("train_frozen_bn", True, "cached features need frozen BatchNorm statistics; use full mode")
        self.model = model
        self.pooled = pooled
        self.image_size = model_cfg.image_size
        key = _digest(
            {
                "backbone": model_cfg.backbone,
                "weights": weights_sha,
                "pretrained": model_cfg.pretrained,
                "freeze_until": model.freeze_until,
                "image_size": model_cfg.image_size,
                "views_version": VIEWS_VERSION,
                **({"pooled": True} if pooled else {}),
            }
        )
        if weights_sha is None and model_cfg.pretrained is False:
            # Random weights are only reproducible within this process: never share them through disk.
            key += f"-scratch-{id(model)}"
        self.root = Path(root) / key
        self._graphs = Path(root).parent / "onnx"  # the trunk's exported graph, in the same cache as its features
        self._engine_pref = engine
        self._engine: Engine | None = None
        self.computed = 0  # views computed (not loaded) by this store, for reporting

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            trunk = _Trunk(self.model, self.pooled)
            self._engine = Engine(trunk, self.image_size, self._engine_pref, input_dtype=torch.uint8, cache=self._graphs)
        return self._engine

    def _folder(self, augment: AugmentConfig | None, k: int) -> Path:
        return self.root / ("clean" if augment is None or k == 0 else f"aug-{_digest([to_dict(augment), k])}")

    def _views(self, path: str, sha: str, stages: TransformStages, k: int) -> torch.Tensor:
        """[1 + k, 3, H, W] uint8: the clean view, then k augmented ones, all from one decode and one resize."""
        small = stages.resize(load_image_file(path, min_size=self.image_size))
        views = [small]
        # torchvision draws from torch's global generator: photos prepared on other threads must not
        # reseed it half-way through this photo's draws.
        with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
            for j in range(k):
                # A fixed draw per (image, view): the cache holds exactly what a rerun would compute.
                # The CPU generator only: torch.manual_seed would also queue lazy CUDA/XPU seeding, each
                # call recording a stack trace (a third of the time of preparing a photo, profiled).
                torch.default_generator.manual_seed(int(sha[:12], 16) + j)
                views.append(stages.random(small))
        return torch.stack(views)

    def features(
        self,
        samples: Sequence[tuple[str, str]],
        augment: AugmentConfig | None = None,
        k: int = 0,
        progress: Progress | None = None,
        batch_size: int = 12,
    ) -> torch.Tensor:
        """[N, 1 + k, C, H, W] float16 trunk features for (path, content sha256) samples; view 0 is clean."""
        k = k if augment is not None else 0  # no augmentation: the clean view only
        folder = self._folder(augment, k)
        folder.mkdir(parents=True, exist_ok=True)
        out: list[torch.Tensor | None] = [None] * len(samples)
        missing = []
        for i, (_, sha) in enumerate(samples):
            f = folder / f"{sha}.pt"
            if f.is_file():
                try:
                    out[i] = torch.load(f, map_location="cpu", weights_only=True)
                    continue
                except Exception:  # a torn or corrupt cache file is recomputed
                    pass
            missing.append(i)
        done = len(samples) - len(missing)
        if progress:
            progress(done, len(samples))
        per_chunk = max(1, batch_size // (1 + k))
        chunks = [missing[i : i + per_chunk] for i in range(0, len(missing), per_chunk)]
        stages = transform_stages(augment, k > 0, self.image_size)

        def views(i: int) -> torch.Tensor:
            return self._views(samples[i][0], samples[i][1], stages, k)

        # Decoding and augmenting (two photos at a time) alternates with the trunk rather than overlapping
        # it: onnxruntime already uses every core, and a third busy thread slowed it more than it saved.
        with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
            for n, chunk in enumerate(chunks):
                batch = torch.cat(list(pool.map(views, chunk)))  # uint8; _Trunk normalises
                feats = self.engine(batch).half()
                feats = feats.reshape(len(chunk), 1 + k, *feats.shape[1:])
                for i, f in zip(chunk, feats, strict=True):
                    out[i] = f.clone()
                    tmp = folder / f".{samples[i][1]}.{os.getpid()}.tmp"
                    torch.save(out[i], tmp)
                    os.replace(tmp, folder / f"{samples[i][1]}.pt")
                self.computed += len(chunk) * (1 + k)
                if n % 25 == 24:
                    release_free_memory()
                done += len(chunk)
                if progress:
                    progress(done, len(samples))
        return torch.stack(out) if out else torch.zeros(0)


class CachedViews(Dataset):
    """Training samples from cached features: each access draws one of an image's views at random."""

    def __init__(self, features: torch.Tensor, targets: Sequence[int], random_view: bool = True) -> None:
        self.features = features
        self.targets = list(targets)
        self.random_view = random_view

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        views = self.features[i]
        j = int(torch.randint(len(views), (1,))) if self.random_view else 0
        return views[j].float(), self.targets[i]


class TailModel(nn.Module):
    """The trainable part of a FishNet (unfrozen stages + head), fed with cached trunk features."""

    def __init__(self, model: FishNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.from_trunk(features)

    def train(self, mode: bool = True) -> TailModel:
        super().train(mode)
        self.model.train(mode)  # keeps the frozen stages' BatchNorm in eval mode
        return self
