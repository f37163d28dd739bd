"""Run qcore functions in a warm child process, with progress and cancel.

Loading and converting a big model holds Python's GIL for long stretches: ``onnx.load``
parses the protobuf and ``onnx.checker`` checks it in single C++ calls (about 100 ms each
on BERT-base). In a viewer that freezes the window even though the work runs in a thread.
A child process has its own GIL, so the viewer stays responsive; a crash in native code on
a hostile file also ends the child, not the viewer.

The child is started ahead of time (``python -m qcore.child``) so its imports are paid before
the first call, and it is reused. Messages are length-prefixed pickles over its stdin and
stdout; only trusted qcore callables run, named as ``"module:function"``.

    runner = ChildRunner()
    result = runner.call("qcore.convert:convert_for_view", path, config,
                         progress=cb, cancelled=check)
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import IO, Any, NoReturn

from qcore.passes.base import Cancelled

HEADER = struct.Struct("<Q")
ALLOWED_PREFIX = "qcore."  # the child runs qcore's own functions only
CANCEL_GRACE_S = 3.0  # a cancelled call that has not stopped by then is killed


#: A protocol message: its kind (``"call"``, ``"progress"``, ``"result"``...) and arguments.
Message = tuple[Any, ...]
Progress = Callable[[int, int, str], None]


class ChildError(RuntimeError):
    """The child process stopped unexpectedly or could not be started."""


def _write(stream: IO[bytes], message: Message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Message | None:
    """One message, or None at end of stream (or on anything that is not a message)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    size = HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    message = pickle.loads(data)
    return message if isinstance(message, tuple) else None


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.partition(":")
    if not module.startswith(ALLOWED_PREFIX) or not attr:
        raise ValueError(f"not a qcore function: {name}")
    fn: Callable[..., Any] = getattr(import_module(module), attr)
    if not callable(fn):
        raise ValueError(f"not a qcore function: {name}")
    return fn


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with the same message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception that cannot travel is rewritten
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# ---- the child side ----------------------------------------------------------------------
def _serve(inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """Answer calls one at a time; a reader thread sets the cancel flag meanwhile."""
    calls: queue.Queue[Message | None] = queue.Queue()
    cancel = threading.Event()
    send_lock = threading.Lock()

    def send(message: Message) -> None:
        with send_lock:
            _write(outbox, message)

    threading.Thread(target=_read_calls, args=(inbox, calls, cancel), daemon=True).start()
    send(("ready", os.getpid()))
    while (message := calls.get()) is not None:
        cancel.clear()
        send(_answer(message, send, cancel))


def _read_calls(inbox: IO[bytes], calls: queue.Queue[Message | None],
                cancel: threading.Event) -> None:
    """The child's reader thread: calls go to ``calls`` (None after the last), a cancel sets
    ``cancel`` at once."""
    while True:
        message = _read(inbox)
        if message is None or message[0] == "exit":
            calls.put(None)
            return
        if message[0] == "cancel":
            cancel.set()
        else:
            calls.put(message)


def _answer(message: Message, send: Callable[[Message], None],
            cancel: threading.Event) -> Message:
    """Run one call, sending its progress meanwhile; returns the answer: its result, its
    error, or that it was cancelled."""
    _, name, args, kwargs = message

    def progress(done: int, total: int, text: str = "") -> None:
        send(("progress", int(done), int(total), str(text)))

    try:
        fn = _resolve(name)
        if "partial" in inspect.signature(fn).parameters:
            kwargs["partial"] = lambda value: send(("partial", value))
        value = fn(*args, progress=progress, cancelled=cancel.is_set, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
        if cancel.is_set():
            return ("cancelled",)
        return ("error", _portable(exc), traceback.format_exc())
    return ("result", value)


def main() -> None:
    """Entry point of ``python -m qcore.child``: the protocol owns the real stdout."""
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt it
    import qcore.convert  # noqa: F401 - pay the imports before the first call

    _serve(sys.stdin.buffer, outbox)


# ---- the parent side ---------------------------------------------------------------------
class ChildRunner:
    """One warm child process; ``call`` runs a qcore function in it (one call at a time)."""

    def __init__(self, start: bool = True) -> None:
        self._lock = threading.Lock()  # one call at a time
        self._proc: subprocess.Popen[bytes] | None = None
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self.traceback = ""  # the child's traceback of the last error
        if start:
            self.start()

    @property
    def busy(self) -> bool:
        """A call is running (or waiting to)."""
        return self._lock.locked()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start the child unless it runs; returns at once (its imports run meanwhile)."""
        if self.alive:
            return
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])  # works without `pip install` too
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            self._proc = subprocess.Popen(  # our own module, argv list
                [sys.executable, "-m", "qcore.child"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env)
        except OSError as exc:
            raise ChildError(f"cannot start the conversion process: {exc}") from None
        self._inbox = queue.Queue()
        threading.Thread(target=self._read_loop, args=(self._proc, self._inbox),
                         daemon=True).start()

    @staticmethod
    def _read_loop(proc: subprocess.Popen[bytes], inbox: queue.Queue[Message | None]) -> None:
        assert proc.stdout is not None
        try:
            while (message := _read(proc.stdout)) is not None:
                inbox.put(message)
        except (OSError, ValueError, pickle.UnpicklingError, EOFError):
            pass
        inbox.put(None)

    def stop(self) -> None:
        """End the child (it is started again by the next call)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            _write(proc.stdin, ("exit",))
            proc.stdin.close()
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def call(self, name: str, *args: Any, progress: Progress | None = None,
             cancelled: Callable[[], bool] | None = None,
             partial: Callable[[Any], None] | None = None, **kwargs: Any) -> Any:
        """Run ``module:function`` in the child and return its value.

        The function gets ``progress`` and ``cancelled`` keywords like every qcore job, and
        a ``partial`` callback when it takes one: what it sends reaches ``partial`` here.
        Raises what the function raised, ``Cancelled`` after a cancel, or ``ChildError``
        when the child died (it is restarted by the next call).
        """
        with self._lock:
            self.start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                _write(self._proc.stdin, ("call", name, args, kwargs))
            except (OSError, ValueError):
                self._kill()
                raise ChildError("the conversion process stopped unexpectedly") from None
            return self._wait(progress, cancelled, partial)

    def _wait(self, progress: Progress | None, cancelled: Callable[[], bool] | None,
              partial: Callable[[Any], None] | None) -> Any:
        """Relay the child's messages until its result comes (returned) or it fails."""
        cancel_sent_at: float | None = None
        clock = 0.0
        while True:
            try:
                message = self._inbox.get(timeout=0.05)
            except queue.Empty:
                clock += 0.05
                cancel_sent_at = self._cancel_if_asked(cancelled, cancel_sent_at, clock)
                continue
            if message is None:
                self._ended(cancelled=cancel_sent_at is not None)
            if message[0] == "result":
                return message[1]
            self._relay(message, progress, partial)
            # a child streaming progress leaves the inbox never empty on a busy machine:
            # Cancel must not wait for a pause in its messages
            cancel_sent_at = self._cancel_if_asked(cancelled, cancel_sent_at, clock)

    def _cancel_if_asked(self, cancelled: Callable[[], bool] | None, sent_at: float | None,
                         clock: float) -> float | None:
        """Send a cancel once ``cancelled()`` says so, and kill a child that has not stopped
        :data:`CANCEL_GRACE_S` later; returns the clock when the cancel was sent."""
        if sent_at is None and cancelled is not None and cancelled():
            self._send_cancel()
            return clock
        if sent_at is not None and clock - sent_at > CANCEL_GRACE_S:
            self._kill()  # stuck in native code: a fresh child is quicker
            raise Cancelled("cancelled") from None  # called while queue.Empty is handled
        return sent_at

    def _ended(self, cancelled: bool) -> NoReturn:
        """The child's output ended during a call: it was cancelled, or it died."""
        code = self._proc.poll() if self._proc else None
        self._kill()
        if cancelled:
            raise Cancelled("cancelled")
        raise ChildError(f"the conversion process stopped unexpectedly (exit code {code})")

    def _relay(self, message: Message, progress: Progress | None,
               partial: Callable[[Any], None] | None) -> None:
        """Pass progress and partial values on; raise for a cancelled or failed call."""
        kind = message[0]
        if kind == "progress" and progress is not None:
            progress(*message[1:])
        elif kind == "partial" and partial is not None:
            partial(message[1])
        elif kind == "cancelled":
            raise Cancelled("cancelled")
        elif kind == "error":
            self.traceback = message[2]
            raise message[1]

    def _send_cancel(self) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            _write(proc.stdin, ("cancel",))


class ChildPool:
    """Warm child processes for calls that may overlap (a save while the advisor runs): each
    call takes a free child, starting another one up to ``size``."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self._lock = threading.Lock()
        self.runners = [ChildRunner()]

    def free_runner(self) -> ChildRunner:
        """The child the next call runs in: a free one, else a new one (up to ``size``),
        else the first, whose current call it then waits for."""
        with self._lock:
            for runner in self.runners:
                if not runner.busy:
                    return runner
            if len(self.runners) < self.size:
                self.runners.append(ChildRunner())
                return self.runners[-1]
            return self.runners[0]  # every child busy: wait for the first

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``ChildRunner.call`` on a free child."""
        return self.free_runner().call(name, *args, **kwargs)

    def stop(self) -> None:
        for runner in self.runners:
            runner.stop()


_shared: ChildPool | None = None
_shared_lock = threading.Lock()


def shared_runner() -> ChildPool:
    """The process-wide pool, its first child started on first use; stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import atexit

            _shared = ChildPool()
            atexit.register(_shared.stop)
        return _shared


if __name__ == "__main__":
    main()
