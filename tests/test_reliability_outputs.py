"""Issue 15: the outputs of one command are written all or nothing, never two to one file,
never over a special file, a model with external data commits as one unit, and SIGTERM
leaves no temporaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from qcore import files
from qcore.cli import main
from qcore.convert import convert
from qcore.files import OutputError, OutputSet

ROOT = Path(__file__).resolve().parents[1]
QUANT = ROOT / "resources" / "samples" / "cnn_qdq.onnx"


def _convert(*extra: str) -> list[str]:
    return ["convert", "--quant_model_path", str(QUANT), *extra, "-q"]


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if not line.startswith("qcore: warning:")]


# ---- the output set ---------------------------------------------------------------------------


def test_two_flags_naming_one_file_are_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_convert("--int8_model_save_path", "o.onnx",
                         "--fp32_model_save_path", "./o.onnx")) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "are the same file" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_an_output_and_a_debug_file_naming_one_file_are_refused(tmp_path, capsys) -> None:
    assert main(_convert("--int8_model_save_path", str(tmp_path / "d" / "quant_orig.dot"),
                         "--debug", str(tmp_path / "d"))) == 2
    assert "are the same file" in _errors(capsys)[0]
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").iterdir())


def _fail_on_call(real, number: int):
    """``real`` that raises a disk-full error on its ``number``-th call."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == number:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return wrapper


def test_a_failed_fp32_write_leaves_no_int8_model(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(files.os, "fdopen", _fail_on_call(os.fdopen, 2))
    assert main(_convert("--int8_model_save_path", str(tmp_path / "int8.onnx"),
                         "--fp32_model_save_path", str(tmp_path / "fp32.onnx"))) == 2
    assert "No space left on device" in _errors(capsys)[0]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_debug_write_leaves_no_model(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(files.os, "fdopen", _fail_on_call(os.fdopen, 5))
    assert main(_convert("--int8_model_save_path", str(tmp_path / "int8.onnx"),
                         "--debug", str(tmp_path / "debug"))) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_failed_commit_puts_the_old_files_back(tmp_path, monkeypatch, capsys) -> None:
    int8, fp32 = tmp_path / "int8.onnx", tmp_path / "fp32.onnx"
    int8.write_bytes(b"old int8")
    fp32.write_bytes(b"old fp32")
    monkeypatch.setattr(files.os, "replace", _fail_on_call(os.replace, 2))
    assert main(_convert("--int8_model_save_path", str(int8), "--fp32_model_save_path",
                         str(fp32), "--force")) == 2
    assert int8.read_bytes() == b"old int8" and fp32.read_bytes() == b"old fp32"
    assert not _leftovers(tmp_path)


def test_debug_snapshots_are_replaced_only_with_force(tmp_path, capsys) -> None:
    debug = tmp_path / "debug"
    debug.mkdir()
    (debug / "quant_orig.dot").write_text("keep me")
    argv = _convert("--int8_model_save_path", str(tmp_path / "int8.onnx"), "--debug", str(debug))
    assert main(argv) == 2
    assert "pass --force" in _errors(capsys)[0]
    assert (debug / "quant_orig.dot").read_text() == "keep me"
    assert not (tmp_path / "int8.onnx").exists()
    assert main(argv + ["--force"]) == 0
    assert (debug / "quant_orig.dot").read_text() != "keep me"


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_force_never_replaces_a_special_file(kind, tmp_path, capsys) -> None:
    target = tmp_path / "target.onnx"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    assert main(_convert("--int8_model_save_path", str(target), "--force")) == 2
    err = _errors(capsys)
    assert len(err) == 1 and ("FIFO" in err[0] or "folder" in err[0])
    assert target.is_fifo() if kind == "fifo" else target.is_dir()


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_force_never_replaces_a_character_device(device) -> None:
    """Checked when planned, so nothing is written anywhere (not even a temporary)."""
    with pytest.raises(OutputError, match="is a character device, not a regular file"):
        OutputSet(force=True).plan(device)
    assert Path(device).is_char_device()


def test_bench_reports_naming_one_file_are_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quant", str(QUANT), "--engine", "onnxruntime", "--iters", "1",
                 "--json", "r.txt", "--csv", "./r.txt", "-q"]) == 2
    assert "are the same file" in _errors(capsys)[0]
    assert list(tmp_path.iterdir()) == []


def test_an_output_made_meanwhile_is_not_replaced_without_force(tmp_path) -> None:
    target = tmp_path / "out.onnx"
    first, second = OutputSet(), OutputSet()
    first.plan(target)
    second.plan(target)  # both checked before the slow work: the target did not exist
    first.add_bytes(target, b"first")
    second.add_bytes(target, b"second")
    assert first.commit() == [target]
    with pytest.raises(OutputError, match="exists"):
        second.commit()
    assert target.read_bytes() == b"first" and not _leftovers(tmp_path)


def test_a_cli_output_made_during_the_conversion_is_kept(tmp_path, monkeypatch, capsys) -> None:
    target = tmp_path / "int8.onnx"
    import qcore.cli as cli

    def convert_while_another_writes(*args, **kwargs):
        target.write_bytes(b"the other conversion")
        return convert(*args, **kwargs)

    monkeypatch.setattr(cli, "convert", convert_while_another_writes)
    assert main(_convert("--int8_model_save_path", str(target))) == 2
    assert "exists" in _errors(capsys)[0]
    assert target.read_bytes() == b"the other conversion" and not _leftovers(tmp_path)


# ---- external data: the pair is one unit ----------------------------------------------------


def _arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The initializers of the model at ``path`` with its external data (None: unreadable)."""
    try:
        model = onnx.load(str(path))
        return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    except Exception:  # noqa: BLE001 - a mixed-up pair may not load at all
        return None


def _same(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> bool:
    return a is not None and a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


def test_the_model_on_disk_always_matches_its_data_file(tmp_path, monkeypatch) -> None:
    """After every rename of a save over an existing pair, the model at the target loads
    with its own weights (old or new, never the old model with the new data)."""
    result = convert(QUANT)
    old, new = result.int8_model(), result.fp32_model()
    out = tmp_path / "m.onnx"
    files.save_model(old, out, external_data=True)
    old_arrays, new_arrays = _arrays(out), {t.name: numpy_helper.to_array(t)
                                            for t in new.graph.initializer}
    assert old_arrays is not None
    states = []
    real_replace = os.replace

    def replace_and_look(src, dst):
        real_replace(src, dst)
        arrays = _arrays(out)
        states.append("old" if _same(arrays, old_arrays) else
                      "new" if _same(arrays, new_arrays) else "mixed")

    monkeypatch.setattr(files.os, "replace", replace_and_look)
    files.save_model(new, out, external_data=True)
    assert states and "mixed" not in states and states[-1] == "new", states
    monkeypatch.undo()
    assert len(list(tmp_path.glob("m.onnx*.data"))) == 1, "the old data file is removed"


def test_a_model_saved_without_external_data_drops_the_old_data_file(tmp_path) -> None:
    model = convert(QUANT).int8_model()
    out = tmp_path / "m.onnx"
    files.save_model(model, out, external_data=True)
    assert len(list(tmp_path.glob("m.onnx.*.data"))) == 1
    files.save_model(model, out, external_data=False)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    assert _same(_arrays(out), {t.name: numpy_helper.to_array(t)
                                for t in model.graph.initializer})


# ---- names and SIGTERM ------------------------------------------------------------------------


def test_a_255_character_output_name_works(tmp_path, monkeypatch, capsys) -> None:
    name = "n" * 250 + ".onnx"
    assert main(_convert("--int8_model_save_path", str(tmp_path / name))) == 0
    assert (tmp_path / name).is_file() and not _leftovers(tmp_path)
    monkeypatch.setattr(files, "MAX_PROTO_BYTES", 20_000)
    assert main(_convert("--int8_model_save_path", str(tmp_path / name), "--force")) == 0
    data = [p for p in tmp_path.iterdir() if p.suffix == ".data"]
    assert len(data) == 1 and len(data[0].name.encode()) <= 255
    monkeypatch.undo()
    assert onnx.load(str(tmp_path / name)).graph.initializer


CHILD = """
import sys
from qcore import files
real = files.OutputSet.commit
def commit(self):
    print("staged", flush=True)
    sys.stdin.readline()
    return real(self)
files.OutputSet.commit = commit
from qcore.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_before_the_commit_removes_every_temporary(tmp_path) -> None:
    argv = [sys.executable, "-c", CHILD, *_convert(
        "--int8_model_save_path", str(tmp_path / "int8.onnx"), "--fp32_model_save_path",
        str(tmp_path / "fp32.onnx"), "--debug", str(tmp_path / "debug"))]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "staged"
        assert len(_leftovers(tmp_path)) >= 3, "the outputs wait as temporaries"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "qcore: error: terminated" in err
    assert not _leftovers(tmp_path)
    assert not (tmp_path / "int8.onnx").exists() and not (tmp_path / "fp32.onnx").exists()


def test_sigterm_in_process_returns_143_and_cancels_the_hard_exit(tmp_path, monkeypatch,
                                                                 capsys) -> None:
    import qcore.cli as cli

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the handler did not run")

    monkeypatch.setattr(cli, "TERMINATE_GRACE", 3600.0)
    monkeypatch.setattr(cli, "convert", terminated)
    assert main(_convert("--int8_model_save_path", str(tmp_path / "int8.onnx"))) == 143
    assert "qcore: error: terminated" in capsys.readouterr().err
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    for timer in timers:
        timer.join(60)  # a cancelled timer ends at once; one left running would not
    assert not [t for t in timers if t.is_alive()]
    assert signal.getsignal(signal.SIGTERM) is not cli._terminate
    assert list(tmp_path.iterdir()) == []


SWALLOWING_CHILD = """
import sys
import threading
from qcore import cli, files
cli.TERMINATE_GRACE = 0.5
class Blocker:
    def __del__(self):  # an exception raised in here is only printed, never propagated
        print("in __del__", flush=True)
        sys.stdin.readline()
real = files.OutputSet.commit
def commit(self):
    Blocker()  # SIGTERM arrives inside its __del__
    threading.Event().wait()  # a long job after it: only the hard exit ends it
    return real(self)
files.OutputSet.commit = commit
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_lost_in_a_destructor_still_ends_without_temporaries(tmp_path) -> None:
    argv = [sys.executable, "-c", SWALLOWING_CHILD, *_convert(
        "--int8_model_save_path", str(tmp_path / "int8.onnx"))]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "in __del__"
        assert _leftovers(tmp_path)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "qcore: error: terminated" in err, err
    assert "Exception ignored" in err, "the handler's exception was swallowed"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_benchmark_removes_its_folder(tmp_path) -> None:
    work = tmp_path / "tmp"
    work.mkdir()
    argv = [sys.executable, "-m", "qcore.cli", "bench", "--quant", str(QUANT), "--engine",
            "onnxruntime", "--warmup", "0", "--seconds", "600"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "TMPDIR": str(work)})
    try:
        for line in proc.stderr:  # "converted ...": the models are in the folder now
            if line.startswith("converted"):
                break
        assert [p.name for p in work.glob("qcore_bench_*/*.onnx")], "the folder is there"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "terminated" in err, (proc.returncode, err[-2000:])
    assert not list(work.glob("qcore_bench_*")), err[-2000:]


AFTER_TWO_OPENVINO_ENGINES = """
import gc
import os
import signal
import sys
from pathlib import Path
from qcore import cli
from qcore.bench.openvino_engine import OpenVinoEngine
engines = [OpenVinoEngine(), OpenVinoEngine()]  # as verify's two runners, or bench and tune
sessions = [e.load(Path(sys.argv[1]), 1, {}) for e in engines]
for session in sessions:
    session.close()
del sessions
engines.pop(0)  # the first made goes first
gc.collect()
engines.clear()
gc.collect()
def convert(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
cli.convert = convert
sys.exit(cli.main(sys.argv[2:]))
"""


def test_sigterm_after_openvino_ran_still_ends_with_143(tmp_path) -> None:
    """Each OpenVINO Core's CPU plugin set an alternate signal stack and put the previous one
    back when it went: two engines made and dropped in that order left the main thread on a
    freed stack, and the SIGTERM handler crashed the process (-11) instead of removing the
    temporaries. The engines now share one Core."""
    pytest.importorskip("openvino")
    argv = [sys.executable, "-c", AFTER_TWO_OPENVINO_ENGINES, str(QUANT), *_convert(
        "--int8_model_save_path", str(tmp_path / "int8.onnx"))]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 143 and "qcore: error: terminated" in proc.stderr, \
        (proc.returncode, proc.stderr[-2000:])
    assert list(tmp_path.iterdir()) == []
