"""Benchmark inputs: .npy / .npz data cut into feeds, generated data fitted to the model, and
clear errors for data that does not fit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from qcore.bench.inputs import (
    InputError,
    check_feeds,
    generate_inputs,
    load_inputs,
    model_inputs,
    parse_dims,
)


@pytest.fixture()
def token_model(tmp_path):
    """input_ids / attention_mask [batch, seq] int64 and a float [batch, seq, 4] input."""
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    emb = helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", "seq", 4])
    outs = [helper.make_tensor_value_info(f"o{i}", t, None)
            for i, t in enumerate((TensorProto.INT64, TensorProto.INT64, TensorProto.FLOAT))]
    nodes = [helper.make_node("Identity", [i], [f"o{n}"])
             for n, i in enumerate(("input_ids", "attention_mask", "extra"))]
    model = helper.make_model(helper.make_graph(nodes, "g", [ids, mask, emb], outs))
    path = tmp_path / "tokens.onnx"
    onnx.save(model, path)
    return path


def test_generated_inputs_fit_shapes_types_and_dims(token_model) -> None:
    specs = model_inputs(token_model)
    inputs = generate_inputs(specs, count=3, batch=2, dims={"seq": 7}, seed=1)
    assert len(inputs.feeds) == 3 and inputs.batch == 2
    feed = inputs.feeds[0]
    assert feed["input_ids"].shape == (2, 7) and feed["input_ids"].dtype == np.int64
    assert feed["input_ids"].min() >= 0 and feed["input_ids"].max() < 100
    assert np.all(feed["attention_mask"] == 1)
    assert feed["extra"].dtype == np.float32 and feed["extra"].shape == (2, 7, 4)
    again = generate_inputs(specs, count=3, batch=2, dims={"seq": 7}, seed=1)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(inputs.feeds, again.feeds,
                                                            strict=True) for k in a)


def test_default_dims_are_explained(token_model) -> None:
    inputs = generate_inputs(model_inputs(token_model), dims={"sq": 3})
    assert inputs.shapes["input_ids"] == [1, 128]
    text = " | ".join(inputs.notes)
    assert "'seq' = 128" in text and "'batch' = 1" in text
    assert "--dims sq=3 matches no dynamic dimension" in text


def test_parse_dims() -> None:
    assert parse_dims("batch=1, seq=128") == {"batch": 1, "seq": 128}
    assert parse_dims("") == {}
    for bad in ("seq", "seq=0", "=3", "seq=x"):
        with pytest.raises(InputError, match="--dims"):
            parse_dims(bad)


def test_npz_batch_axis_is_cut_into_feeds(samples, tmp_path) -> None:
    specs = model_inputs(samples / "cnn_fp32.onnx")  # image [batch, 3, 32, 32]
    data = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "d.npz", image=data)
    inputs = load_inputs(tmp_path / "d.npz", specs, batch=2)
    assert [f["image"].shape[0] for f in inputs.feeds] == [2, 2]
    assert np.array_equal(inputs.feeds[1]["image"], data[2:4])
    assert any("dropped the last 1" in n for n in inputs.notes)


def test_npz_list_of_samples_and_npy(samples, tmp_path) -> None:
    specs = model_inputs(samples / "cnn_fp32.onnx")
    data = np.zeros((4, 1, 3, 32, 32), np.float64)  # 4 samples; float64 is cast
    np.savez(tmp_path / "list.npz", image=data)
    inputs = load_inputs(tmp_path / "list.npz", specs)
    assert len(inputs.feeds) == 4 and inputs.feeds[0]["image"].dtype == np.float32
    np.save(tmp_path / "one.npy", data[0])
    assert len(load_inputs(tmp_path / "one.npy", specs).feeds) == 1


def test_bad_data_gives_clear_errors(samples, token_model, tmp_path) -> None:
    specs = model_inputs(samples / "cnn_fp32.onnx")
    np.savez(tmp_path / "wrong_name.npz", pixels=np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(InputError, match="no array for input 'image'.*the file has pixels"):
        load_inputs(tmp_path / "wrong_name.npz", specs)
    np.savez(tmp_path / "wrong_shape.npz", image=np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(InputError, match=r"shape \[1, 3, 28, 28\] does not fit"):
        load_inputs(tmp_path / "wrong_shape.npz", specs)
    np.savez(tmp_path / "wrong_type.npz", input_ids=np.zeros((1, 4), np.float32),
             attention_mask=np.ones((1, 4), np.int64), extra=np.zeros((1, 4, 4), np.float32))
    with pytest.raises(InputError, match="float32, the model wants int64"):
        load_inputs(tmp_path / "wrong_type.npz", model_inputs(token_model))
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.int64))
    with pytest.raises(InputError, match="a .npy holds one array but the model has 3 inputs"):
        load_inputs(tmp_path / "x.npy", model_inputs(token_model))
    with pytest.raises(InputError, match="no such input data file"):
        load_inputs(tmp_path / "none.npz", specs)


def test_check_feeds_against_another_model(samples, token_model) -> None:
    feed = generate_inputs(model_inputs(samples / "cnn_fp32.onnx")).feeds[0]
    check_feeds(feed, model_inputs(samples / "cnn_qdq.onnx"), "qdq")
    with pytest.raises(InputError, match="model 'tok' has input 'input_ids'"):
        check_feeds(feed, model_inputs(token_model), "tok")


@pytest.fixture()
def scalar_input_model(tmp_path):
    """audio [batch, seq] float scaled by a scalar int64 input ``sr`` (shape []), as in
    silero VAD's sample-rate input."""
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "seq"])
    rate = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq"])
    nodes = [helper.make_node("Cast", ["sr"], ["sr_f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["audio", "sr_f"], ["out"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [audio, rate], [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "scalar.onnx"
    onnx.save(model, path)
    return path


def test_scalar_input_keeps_its_shape(scalar_input_model, tmp_path) -> None:
    from qcore.bench import BenchSettings, run_benchmark

    specs = model_inputs(scalar_input_model)
    audio = np.linspace(-1, 1, 2 * 16, dtype=np.float32).reshape(2, 16)
    np.savez(tmp_path / "one.npz", audio=audio, sr=np.array(16000, np.int64))
    inputs = load_inputs(tmp_path / "one.npz", specs)
    assert [f["sr"].shape for f in inputs.feeds] == [(), ()]  # the batch of 2 cut in rows
    check_feeds(inputs.feeds[0], specs, "scalar")
    np.savez(tmp_path / "list.npz", audio=audio[:, None], sr=np.array([8000, 16000], np.int64))
    listed = load_inputs(tmp_path / "list.npz", specs)
    assert [int(f["sr"]) for f in listed.feeds] == [8000, 16000]
    assert all(f["sr"].shape == () for f in listed.feeds)
    settings = BenchSettings(engines=["onnxruntime"], threads=[1], iters=2, warmup=1,
                             inputs=tmp_path / "one.npz")
    report = run_benchmark({"fp32": scalar_input_model}, settings)
    assert report.result("fp32", "onnxruntime", 1).status == "ok"
