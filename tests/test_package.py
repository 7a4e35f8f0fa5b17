"""The phone's model package: weights stored in 8 bits and the station computing with the same ones, parts named
by their bytes for small updates, for each backbone auto mode may choose."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from fishcore.config import DataConfig, TrainConfig
from fishcore.inference.package import PART_BYTES, Package, build_package, joined_graph, split_parts
from fishcore.inference.predict import Predictor
from fishcore.models.config import ModelConfig
from fishcore.models.onnx_export import to_onnx
from fishcore.models.quantize import dequantized, per_channel_int8, quantize_weights, round_weights
from fishcore.store.model_files import read_card
from fishcore.training.pipeline import train_folder
from fishcore.training.run import RunOptions, TrainingRun

from conftest import class_image, make_image_folder


def _session(graph: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def test_8_bit_weights_after_a_folded_batch_norm_are_the_ones_the_torch_side_rounded():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.Conv2d(64, 32, 1), nn.BatchNorm2d(32),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 40)).eval()  # fmt: skip
    for bn in (net[1], net[4]):  # statistics a trained network would have
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    round_weights(net)
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        want = net(x).numpy()
    graph = quantize_weights(to_onnx(net, 16))
    model = onnx.load_from_string(graph)
    stored = {t.name: t.data_type for t in model.graph.initializer}
    assert sum(dt == onnx.TensorProto.INT8 for dt in stored.values()) >= 3  # the three layers' weights (>= 1024 each)
    assert len(graph) < len(to_onnx(net, 16)) / 2.5
    got = _session(graph).run(None, {"x": x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-4  # rounded once, by the same rule: the same numbers on both sides
    # Rounding is per output channel, to the nearest of 255 steps of that channel's largest weight.
    w = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    q, scale = per_channel_int8(w, 0)
    assert q.dtype == np.int8 and np.abs(q).max(axis=1).tolist() == [127] * 8
    assert np.all(np.abs(dequantized(q, scale, 0) - w) <= scale[:, None] / 2 + 1e-7)
    with pytest.raises(ValueError, match="no weight named"):
        quantize_weights(graph, keep={"a.name.that.is.not.there"})


def test_parts_are_named_by_their_bytes_and_a_graph_joined_again_is_whole():
    big = numpy_helper.from_array(np.arange(PART_BYTES // 4 + 10, dtype=np.float32).reshape(1, -1), "big")
    small = numpy_helper.from_array(np.ones((1, 3), np.float32), "small")
    node = helper.make_node("MatMul", ["x", "big"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, PART_BYTES // 4 + 10])],
                          [big, small])  # fmt: skip
    graph = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    light, parts = split_parts(graph)
    assert len(parts) == 1 and len(light) < 1000  # the big tensor left, the small one stayed
    import hashlib

    ((name, data),) = parts.items()
    assert hashlib.sha256(data).hexdigest() == name
    whole = joined_graph(light, parts)
    out = _session(whole).run(None, {"x": np.ones((1, 1), np.float32)})[0]
    assert np.array_equal(out[0], numpy_helper.to_array(big)[0])


@pytest.mark.slow
def test_a_lite2_model_saves_loads_and_its_phone_package_gives_the_same_answers(tmp_path):
    data = make_image_folder(tmp_path / "d", ["red", "green", "blue"], 14)
    run = TrainingRun(DataConfig(), ModelConfig(backbone="efficientnet_lite2", image_size=96), TrainConfig(mode="instant"),
                      RunOptions(out_dir=str(tmp_path / "m"), cache_dir=str(tmp_path / "c")))  # fmt: skip
    outcome = train_folder(data, run)
    card = read_card(outcome.model_dir)
    assert card.backbone == "efficientnet_lite2" and card.image_size == 96
    package = build_package(outcome.model_dir)
    again = Package.read(package.data)
    assert again.meta["parts"] == package.meta["parts"] and again.onnx() == package.onnx()
    predictor = Predictor.load(outcome.model_dir)
    session = _session(package.onnx())
    photos = [class_image(i % 3, seed=5000 + i, size=80) for i in range(9)]
    buffers = []
    for im in photos:
        buf = io.BytesIO()
        im.save(buf, "PNG")
        buffers.append(io.BytesIO(buf.getvalue()))
    answers = predictor.predict(buffers)
    for im, answer in zip(photos, answers, strict=True):
        probs, distance, fish = session.run(None, {"image": predictor.preprocess(im).unsqueeze(0).numpy()})
        assert predictor.classes[int(probs[0].argmax())] == answer.label
        assert abs(float(probs[0].max()) - answer.confidence) < 1e-4
        assert abs(float(distance[0]) - answer.distance) < 1e-4 and abs(float(fish[0]) - answer.fish_likeness) < 1e-4
