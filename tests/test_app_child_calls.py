"""The app's typed calls into the conversion process name real qcore functions and pass
arguments those functions accept (checked against their signatures, without a child)."""

from __future__ import annotations

import inspect
from importlib import import_module
from pathlib import Path

import pytest

from app.headless import child_calls
from qcore.advise import AdviseSettings
from qcore.config import ConvertConfig


class Recorder:
    """Stands in for qcore.child's pool: keeps each call instead of running it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def call(self, name: str, *args, **kwargs):
        self.calls.append((name, args, kwargs))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    runner = Recorder()
    monkeypatch.setattr(child_calls, "shared_runner", lambda: runner)
    return runner


def test_every_call_fits_the_function_it_names(recorder: Recorder) -> None:
    source, config = Path("m.onnx"), ConvertConfig()
    child_calls.convert_for_view(source, config, partial=print, preview_above_ops=400)
    child_calls.write_converted(source, config, {"int8": Path("int8.onnx")})
    child_calls.verify(source, config)
    child_calls.advise(source, config, AdviseSettings())
    assert len(recorder.calls) == 4
    for name, args, kwargs in recorder.calls:
        module, _, attr = name.partition(":")
        fn = getattr(import_module(module), attr)
        passed = dict(kwargs)
        if "partial" not in inspect.signature(fn).parameters:
            passed.pop("partial", None)  # the child's own callback (qcore.child)
        inspect.signature(fn).bind(*args, **passed)  # raises TypeError on a mismatch
        assert {"progress", "cancelled"} <= set(kwargs)
