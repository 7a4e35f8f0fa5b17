"""One place for seeds and one for the device."""

from __future__ import annotations

import random
import re

import numpy as np
import torch

from fishcore.config import PRECISIONS, check_choice
from fishcore.errors import ConfigError
from fishcore.settings import precision_override


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch Generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(device)):
        raise ConfigError("device", device, "must be auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", device, "CUDA is not available on this machine; use auto or cpu")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """True when the device does bfloat16 arithmetic in hardware (CUDA with bf16; x86 CPUs with AMX or AVX512-BF16).

    Elsewhere bf16 is emulated and slower than float32, so "auto" precision stays at float32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' where the hardware has it, else 'fp32'; 'bf16' and 'fp32' are taken as asked.

    FISHCORE_PRECISION=fp32 (or bf16) decides what 'auto' means for the whole process, so a machine with
    bf16 can run exactly what a processor without it would.
    """
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        forced = precision_override()
        if forced != "auto":
            return forced
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Mixed precision for training steps: matmuls and convolutions in bfloat16, weights and optimiser in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def cpu_name() -> str:
    """The processor's model name (every speed figure says which processor it came from)."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
