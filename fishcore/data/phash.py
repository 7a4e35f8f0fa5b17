"""The perceptual hash: 64 bits of a photo's coarse look, the same for its flipped and rotated copies.
Which hashes count as near-copies: fishcore.data.nearcopy."""

from __future__ import annotations

import numpy as np
from PIL import Image

_DCT_N = 32
_DCT = np.array(
    [[np.cos(np.pi * (2 * x + 1) * u / (2 * _DCT_N)) for x in range(_DCT_N)] for u in range(_DCT_N)],
    dtype=np.float64,
)


def _dct_hash(gray: np.ndarray) -> int:
    coeffs = (_DCT @ gray @ _DCT.T)[:8, :8].ravel()
    bits = coeffs > np.median(coeffs[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def perceptual_hash(img: Image.Image) -> int:
    """64-bit DCT hash that ignores flips and 90-degree rotations (the minimum over the 8 views)."""
    gray = np.asarray(img.convert("L").resize((_DCT_N, _DCT_N), Image.Resampling.BILINEAR), dtype=np.float64)
    views = []
    for k in range(4):
        rotated = np.rot90(gray, k)
        views.append(rotated)
        views.append(rotated[:, ::-1])
    return min(_dct_hash(v) for v in views)
