"""A network as ONNX bytes: what the inference engine runs in onnxruntime and what `export --format onnx` writes.

Exporting a network takes a second or more (six under load) and happens whenever a process first runs a model or a
frozen trunk: every training job, every server start, every `fishcore predict`. With a cache folder the bytes are
kept on disk, keyed by everything the graph is made of (the weights' bytes, each layer's class and settings, the
code of fishcore and the versions of torch and torchvision), so a process that meets the same network again reads
its graph instead of tracing it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17
CACHE_KEEP = 24  # graphs kept in a cache folder (most recently used; 5-25 MB each)


def to_onnx(
    module: nn.Module,
    image_size: int,
    input_dtype: torch.dtype = torch.float32,
    names: tuple[str, ...] = ("x", "y"),
    cache: str | os.PathLike | None = None,
) -> bytes:
    """The module (in eval mode) as an ONNX graph with a dynamic batch axis; ``names``: its input, then its outputs.
    ``cache``: a folder where graphs are kept and looked up (None: always export).

    The TorchScript-based exporter is deprecated in favour of one that needs onnxscript; it still exports
    these plain CNNs exactly (checked against torch to 1e-4 in the tests).
    """
    module.eval()
    if cache is None:
        return _export(module, image_size, input_dtype, names)
    path = Path(cache) / f"{graph_key(module, image_size, input_dtype, names)}.onnx"
    with contextlib.suppress(OSError):
        graph = path.read_bytes()
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept when the folder is pruned
        return graph
    graph = _export(module, image_size, input_dtype, names)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next process the export
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(graph)
        os.replace(tmp, path)  # whole or absent: processes may fill the cache at once
        _prune(path.parent)
    return graph


def _export(module: nn.Module, image_size: int, input_dtype: torch.dtype, names: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    example = torch.zeros(1, 3, image_size, image_size, dtype=input_dtype)
    inp, *outs = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,
            input_names=[inp],
            output_names=outs,
            dynamic_axes={inp: {0: "batch"}, **{out: {0: "batch"} for out in outs}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def graph_key(module: nn.Module, image_size: int, input_dtype: torch.dtype, names: tuple[str, ...]) -> str:
    """What the exported graph depends on, as a digest: two modules with the same key export the same graph."""
    import torchvision

    h = hashlib.sha256()
    h.update(json.dumps([OPSET, torch.__version__, torchvision.__version__, _code_digest(), image_size, str(input_dtype),
                         list(names)]).encode())  # fmt: skip
    for name, m in module.named_modules():
        cls = type(m)
        h.update(f"\0{name}:{cls.__module__}.{cls.__qualname__}:{m.extra_repr()}".encode())
        for attr, value in sorted(vars(m).items()):
            if not attr.startswith("_"):  # the layer's own settings (temperature, eps, ...); weights follow
                h.update(f"\0{attr}=".encode())
                _update(h, value)
    for name, tensor in module.state_dict().items():
        h.update(f"\0{name}".encode())
        _update(h, tensor)
    return h.hexdigest()[:32]


def _update(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for v in value:
            _update(h, v)
        h.update(b"]")
    elif value is None or isinstance(value, bool | int | float | str | torch.dtype):
        h.update(repr(value).encode())
    else:
        h.update(type(value).__qualname__.encode())


@functools.cache
def _code_digest() -> str:
    """fishcore's own source: any change to how a network is built or run makes new keys."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _prune(folder: Path, keep: int = CACHE_KEEP) -> None:
    with contextlib.suppress(OSError):
        graphs = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in graphs[keep:]:
            with contextlib.suppress(OSError):
                old.unlink()
