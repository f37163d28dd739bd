"""What the machine is: CPU model, logical CPUs and the SIMD flags that decide INT8 speed."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

#: CPU flags that matter for INT8 / BF16 inference, in the order they are reported.
FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """(model name, flags) from the first processor block of ``/proc/cpuinfo``."""
    model, flags = "", set[str]()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return model or platform.processor() or platform.machine(), flags


def system_info() -> dict[str, object]:
    """Machine facts recorded with every benchmark report.

    Returns:
        ``cpu`` (model name), ``logical_cpus``, ``cpu_flags`` (the present flags of
        :data:`FLAGS_OF_INTEREST`), ``platform`` and ``python``.
    """
    model, flags = _cpuinfo()
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count() or 0,
        "cpu_flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
