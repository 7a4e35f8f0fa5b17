"""A network as ONNX bytes: what the inference engine runs in onnxruntime and what `export --format onnx` writes."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn


def to_onnx(
    module: nn.Module, image_size: int, input_dtype: torch.dtype = torch.float32, names: tuple[str, ...] = ("x", "y")
) -> bytes:
    """The module (in eval mode) as an ONNX graph with a dynamic batch axis; ``names``: its input, then its outputs.

    The TorchScript-based exporter is deprecated in favour of one that needs onnxscript; it still exports
    these plain CNNs exactly (checked against torch to 1e-4 in the tests).
    """
    buf = io.BytesIO()
    example = torch.zeros(1, 3, image_size, image_size, dtype=input_dtype)
    inp, *outs = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (example,),
            buf,
            input_names=[inp],
            output_names=outs,
            dynamic_axes={inp: {0: "batch"}, **{out: {0: "batch"} for out in outs}},
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()
