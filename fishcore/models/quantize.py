"""Weights stored in 8 bits, computed in float32: the phone's download a quarter of the float graph's.

Each large weight of a convolution, a fully connected layer or a matrix product is stored as int8 with one
float32 scale per output channel (symmetric, zero point 0) and turned back into float32 by a DequantizeLinear
node in front of its layer; onnxruntime folds those nodes into constants when it loads the graph, so the
network then runs exactly as a float graph whose weights are the rounded ones. Activations are never
quantised: that is where full int8 loses a MobileNet's accuracy (the float answer on 80-82 % of photos).
"""

from __future__ import annotations

import numpy as np

MIN_ELEMENTS = 1024  # smaller tensors (biases, the first layers' few weights) stay float32: they cost nothing
# Which input of which operator is a weight, and along which axis its output channels run.
_WEIGHT_INPUT = {"Conv": 1, "Gemm": 1, "MatMul": 1}


def _output_axis(node, array: np.ndarray) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return array.ndim - 1  # MatMul: (K, N), N outputs


def per_channel_int8(array: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales) with array ~= values * scales along ``axis``; round half to even, as
    QuantizeLinear does."""
    moved = np.moveaxis(array.astype(np.float32), axis, 0).reshape(array.shape[axis], -1)
    scale = (np.abs(moved).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    shape = [1] * array.ndim
    shape[axis] = -1
    q = np.clip(np.rint(array / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def dequantized(q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    """What DequantizeLinear gives back, in float32 (the same product, so the same bits)."""
    shape = [1] * q.ndim
    shape[axis] = -1
    return (q.astype(np.float32) * scale.reshape(shape)).astype(np.float32)


def quantize_weights(graph: bytes, keep: set[str] | frozenset[str] = frozenset(), min_elements: int = MIN_ELEMENTS) -> bytes:
    """The ONNX graph with its large layer weights stored as int8 per output channel (see the module's docstring),
    and those that hold float16 values (the reference photos' features) as float16; ``keep``: initializer names
    left in float32."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(graph)
    for node in list(model.graph.node):  # constants the exporter wrote as nodes (a buffer: the reference features)
        value = next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
        if node.op_type == "Constant" and value is not None and np.prod(value.dims) >= min_elements:
            value.name = node.output[0]
            model.graph.initializer.append(value)
            model.graph.node.remove(node)
    inits = {t.name: t for t in model.graph.initializer}
    if set(keep) - set(inits):  # a renamed layer would silently be rounded here and not at the station
        raise ValueError(f"no weight named {', '.join(sorted(set(keep) - set(inits)))} in the graph")
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in inits:
                uses.setdefault(name, []).append((node, k))
    new_nodes, replaced = [], []
    for name, tensor in inits.items():
        users = uses.get(name, [])
        if name in keep or not users or any(_WEIGHT_INPUT.get(n.op_type) != k for n, k in users):
            continue
        array = numpy_helper.to_array(tensor)
        if array.dtype != np.float32 or array.size < min_elements or array.ndim < 2:
            continue
        if np.array_equal(array.astype(np.float16).astype(np.float32), array):
            # Already float16 values (the reference photos' features): stored as such, exactly, and cast back.
            replaced.append(tensor)
            model.graph.initializer.append(numpy_helper.from_array(array.astype(np.float16), f"{name}.half"))
            new_nodes.append(helper.make_node("Cast", [f"{name}.half"], [name], name=f"{name}.cast", to=onnx.TensorProto.FLOAT))
            continue
        axes = {_output_axis(n, array) for n, _ in users}
        if len(axes) != 1:
            continue
        axis = axes.pop()
        q, scale = per_channel_int8(array, axis)
        replaced.append(tensor)
        model.graph.initializer.extend([
            numpy_helper.from_array(q, f"{name}.int8"),
            numpy_helper.from_array(scale, f"{name}.scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{name}.zero"),
        ])  # fmt: skip
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{name}.int8", f"{name}.scale", f"{name}.zero"], [name],
                                          name=f"{name}.dequantize", axis=axis))  # fmt: skip
    for tensor in replaced:
        model.graph.initializer.remove(tensor)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes + nodes)  # before every use: the graph stays in topological order
    onnx.checker.check_model(model)
    return model.SerializeToString()


def round_weights(module, keep: tuple = ()) -> None:
    """Round, in place, every weight quantize_weights stores in 8 bits to the value the phone computes with: each
    Conv2d and Linear weight of at least MIN_ELEMENTS, per output channel, but those of the modules in ``keep``.
    A batch norm after a convolution scales whole output channels, so folding it (as the ONNX export does) keeps
    the weights 8-bit exact: the station and the phone then compute with the same numbers."""
    import torch
    from torch import nn

    with torch.no_grad():
        for m in module.modules():
            if any(m is k for k in keep):
                continue
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.numel() >= MIN_ELEMENTS:
                w = m.weight.detach().cpu().numpy()
                q, scale = per_channel_int8(w, 0)
                m.weight.copy_(torch.from_numpy(dequantized(q, scale, 0)))
