"""Inference engine: a frozen module run in onnxruntime where it can, else in torch."""

from __future__ import annotations

import os

import torch
from torch import nn

from fishcore.config import check_choice
from fishcore.models.onnx_export import to_onnx
from fishcore.settings import Paths

ENGINES = ("auto", "onnx", "torch")


class Engine:
    """Runs a frozen module for inference where it is fastest: onnxruntime when available, else torch.

    Both give the same numbers to about 1e-5. The exported graph is kept in the workspace's cache (``cache``: another
    folder), so the next process that runs the same network reads it instead of exporting again.
    """

    def __init__(
        self,
        module: nn.Module,
        image_size: int,
        prefer: str = "auto",
        input_dtype: torch.dtype = torch.float32,
        cache: str | os.PathLike | None = None,
    ) -> None:
        check_choice("engine", prefer, ENGINES)
        self.name = "torch"
        self._session = None
        if prefer in ("auto", "onnx"):
            try:
                self._session = self._export(module.eval(), image_size, input_dtype, cache or Paths.from_env().graphs)
                self.name = "onnxruntime"
            except Exception:  # any export or runtime problem: torch is always there
                if prefer == "onnx":
                    raise
                self._session = None
        self.module = module.eval().to(memory_format=torch.channels_last)

    @staticmethod
    def _export(module: nn.Module, image_size: int, input_dtype: torch.dtype, cache: str | os.PathLike):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spin-waiting, so the threads decoding photos between
        # batches get the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = to_onnx(module, image_size, input_dtype, cache=cache)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._session is not None:
            return torch.from_numpy(self._session.run(None, {"x": x.contiguous().numpy()})[0])
        return self.module(x.contiguous(memory_format=torch.channels_last)).float()
