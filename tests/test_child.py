"""The conversion process (qcore.child) and the light results it sends (qcore.light)."""

from __future__ import annotations

import os
import pickle
import signal
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import cosine, run_model

from devtools import modelgen
from qcore.child import ChildError, ChildPool, ChildRunner
from qcore.config import ConvertConfig
from qcore.convert import convert, convert_for_view, export_model
from qcore.ir import GraphError
from qcore.light import KEEP_ELEMENTS
from qcore.loader import ModelError
from qcore.passes.base import Cancelled

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"


@pytest.fixture(scope="module")
def runner() -> ChildRunner:
    child = ChildRunner()
    yield child
    child.stop()


@pytest.fixture(scope="module")
def big_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big4800_qdq.onnx"
    onnx.save(modelgen.qdq_chain(800), str(path))
    return path


def _ops(result) -> list[list[tuple]]:
    return [[(n.id, n.op_type, n.status, n.reason) for n in s.graph.nodes]
            for s in result.snapshots]


def test_the_child_returns_the_same_conversion(runner: ChildRunner, samples: Path) -> None:
    path = samples / "transformer_qdq.onnx"
    config = ConvertConfig(op_ids_to_skip=[3])
    steps: list[tuple] = []
    light = runner.call("qcore.convert:convert_for_view", path, config,
                        progress=lambda *a: steps.append(a))
    full = convert(path, config)
    assert _ops(light) == _ops(full)
    assert light.int8.light and light.source == path and light.complete
    assert [s[2] for s in steps] == [s.name for s in full.snapshots[1:]]


def test_light_results_are_small_and_cannot_be_exported(samples: Path) -> None:
    path = samples / "cnn_qdq.onnx"
    full = convert(path)
    light = convert_for_view(path)
    weights = {id(a): a.nbytes for s in full.snapshots for a in s.graph.initializers.values()
               if a.size > KEEP_ELEMENTS}  # each array once: pickle stores it once
    assert len(pickle.dumps(full)) - len(pickle.dumps(light)) >= sum(weights.values())
    weight = max(full.int8.initializers, key=lambda k: full.int8.initializers[k].size)
    stub = pickle.loads(pickle.dumps(light)).int8.initializers[weight]
    assert stub.shape == full.int8.initializers[weight].shape
    assert stub.dtype == full.int8.initializers[weight].dtype
    with pytest.raises(GraphError, match="light"):
        export_model(light.int8)


def test_a_light_result_converts_again_for_its_model(samples: Path) -> None:
    path = samples / "cnn_qdq.onnx"
    light = convert_for_view(path)
    again = light.int8_model()  # converted again from light.source
    assert again.SerializeToString() == convert(path).int8_model().SerializeToString()


def test_write_converted_saves_both_models(runner: ChildRunner, samples: Path,
                                           tmp_path: Path) -> None:
    path = samples / "cnn_qdq.onnx"
    outputs = {"int8": tmp_path / "int8.onnx", "fp32": tmp_path / "fp32.onnx"}
    written = runner.call("qcore.convert:write_converted", path, ConvertConfig(), outputs)
    assert written == outputs
    feeds = {"image": np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32)}
    quant = run_model(path, feeds)[0]
    assert cosine(run_model(outputs["int8"], feeds)[0], quant) > 0.99
    assert cosine(run_model(outputs["fp32"], feeds)[0], quant) > 0.99


def test_errors_come_back_as_they_were_raised(runner: ChildRunner) -> None:
    with pytest.raises(ModelError, match="truncated.onnx"):
        runner.call("qcore.convert:convert_for_view", BAD / "truncated.onnx")
    with pytest.raises(ValueError, match="not a qcore function"):
        runner.call("os:system", "true")
    assert runner.traceback  # the child's traceback is kept for a bug report


def test_the_preview_comes_first_for_big_models(runner: ChildRunner, big_path: Path) -> None:
    previews: list = []
    result = runner.call("qcore.convert:convert_for_view", big_path,
                         partial=previews.append, preview_above_ops=1000)
    assert len(previews) == 1 and not previews[0].complete
    assert [s.name for s in previews[0].snapshots] == ["quant_orig"]
    assert _ops(previews[0])[0] == _ops(result)[0] and result.complete
    previews.clear()
    runner.call("qcore.convert:convert_for_view", big_path, partial=previews.append,
                preview_above_ops=10**6)
    assert previews == []  # small enough: no preview


def test_cancel_stops_the_child_and_it_stays_usable(runner: ChildRunner, big_path: Path,
                                                     samples: Path) -> None:
    steps: list[tuple] = []
    with pytest.raises(Cancelled):  # cancelled on the first progress message
        runner.call("qcore.convert:convert_for_view", big_path,
                    progress=lambda *step: steps.append(step), cancelled=lambda: bool(steps))
    assert 0 < len(steps) < 15, "the conversion ran on after the cancel"
    assert runner.call("qcore.convert:convert_for_view", samples / "cnn_qdq.onnx").complete


def test_a_dead_child_is_an_error_and_is_replaced(runner: ChildRunner, big_path: Path,
                                                  samples: Path) -> None:
    runner.call("qcore.convert:convert_for_view", samples / "cnn_qdq.onnx")  # warm
    pid = runner.pid
    assert pid is not None

    def crash(*_step: object) -> None:  # as a crash in native code would end it
        os.kill(pid, signal.SIGKILL)

    with pytest.raises(ChildError, match="stopped unexpectedly"):
        runner.call("qcore.convert:convert_for_view", big_path, progress=crash)
    assert runner.call("qcore.convert:convert_for_view", samples / "cnn_qdq.onnx").complete
    assert runner.pid not in (None, pid)


class HeldCall:
    """A conversion running in ``runner`` that stays in its first progress message (so the
    child is busy) until ``release()``."""

    def __init__(self, runner: ChildRunner, path: Path) -> None:
        self.running, self.go_on = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=runner.call, args=(
            "qcore.convert:convert_for_view", path), kwargs={"progress": self._hold})
        self.thread.start()
        assert self.running.wait(60), "the conversion sent no progress"

    def _hold(self, *_step: object) -> None:
        self.running.set()
        self.go_on.wait(60)

    def release(self) -> None:
        self.go_on.set()
        self.thread.join(60)


def test_the_pool_starts_another_child_only_when_all_are_busy(samples: Path) -> None:
    path = samples / "cnn_qdq.onnx"
    pool = ChildPool(size=2)
    try:
        first = pool.runners[0]
        assert pool.free_runner() is first
        held = HeldCall(first, path)  # a call is running in the first child
        second = pool.free_runner()
        assert second is not first and pool.runners == [first, second]
        held_too = HeldCall(second, path)
        assert pool.free_runner() is first  # at the cap: wait for the first
        held_too.release()
        held.release()
        assert len(pool.runners) == 2 and not first.busy and not second.busy
    finally:
        pool.stop()


def test_a_cancel_is_sent_while_progress_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cancel was checked only when no message came for 50 ms: a child streaming progress
    on a busy machine finished a conversion the user had cancelled."""
    runner = ChildRunner(start=False)
    sent: list[int] = []
    steps: list[tuple] = []
    monkeypatch.setattr(runner, "_send_cancel", lambda: sent.append(len(steps)))
    for i in range(200):  # already queued: the inbox is never empty until the result
        runner._inbox.put(("progress", i, 200, "pass"))
    runner._inbox.put(("result", "done"))
    assert runner._wait(lambda *step: steps.append(step), lambda: bool(steps), None) == "done"
    assert sent == [1]  # once, right after the first progress message
