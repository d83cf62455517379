"""What fastbp runs on: its thread count, its CPU path, and how it was built."""
from __future__ import annotations

import contextlib
import operator
import os
import platform
import sys
from typing import Any, Iterator

from . import _core

__all__ = ["set_num_threads", "get_num_threads", "threads", "cpu_capability", "show_config",
           "set_workspace_limit", "get_workspace_limit"]

_MAX_THREADS = 1024


def _thread_count(op: str, n: object) -> int:
    if isinstance(n, bool):
        raise TypeError(f"{op}: n must be an int, got {n!r}")
    try:
        count = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{op}: n must be an int, got {n!r}") from None
    if not 1 <= count <= _MAX_THREADS:
        raise ValueError(f"{op}: n must be between 1 and {_MAX_THREADS}, got {count}")
    return count


def set_num_threads(n: int) -> None:
    """Set how many threads fastbp's kernels use, process-wide (results are identical for any
    count). The default is OpenMP's: OMP_NUM_THREADS if set, else the number of CPUs.

    A thread's OpenMP limit (what ``threadpoolctl.threadpool_limits`` and omp_set_num_threads
    change) caps this count for that thread. In a child made by fork() after the parent ran
    threaded work, fastbp stays on one thread: OpenMP's worker threads do not survive a fork.
    """
    _core.set_num_threads(_thread_count("set_num_threads", n))


def get_num_threads() -> int:
    """Number of threads fastbp's kernels use when called from this thread."""
    return _core.get_num_threads()


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """``with fastbp.threads(n):`` ops called from this thread inside the block run on n
    threads; the previous setting comes back afterwards. Other threads are not affected."""
    count = _thread_count("threads", n)
    previous = _core.thread_override()
    _core.set_thread_override(count)
    try:
        yield
    finally:
        _core.set_thread_override(previous)


def set_flush_denormal(mode: bool) -> bool:
    """Flush subnormal numbers to zero in fastbp's compiled ops, process-wide (off by default):
    subnormal inputs are read as zero and results that would be subnormal become zero, as with
    ``torch.set_flush_denormal(True)``. Off, results are exact; but cores that take a microcode
    assist for subnormal operands (Intel's) then run layers whose values are subnormal tens of
    times slower. Returns whether this CPU has the mode (x86: yes); where it has not, nothing
    changes."""
    import numpy as np

    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"set_flush_denormal: mode must be a bool, got {type(mode).__name__}")
    return _core.set_flush_denormal(bool(mode))


def get_flush_denormal() -> bool:
    """Whether fastbp flushes subnormal numbers to zero (set_flush_denormal)."""
    return _core.flush_denormal()


def set_workspace_limit(nbytes: int) -> None:
    """Cap the scratch memory a convolution may allocate beyond its inputs and outputs (default
    64 MiB): large batches are processed in chunks that fit. Outputs and input gradients do not
    depend on it; weight and bias gradients sum over the chunks, so they may differ in rounding
    (for a given limit, they are the same on any number of threads)."""
    if isinstance(nbytes, bool):
        raise TypeError(f"set_workspace_limit: nbytes must be an int, got {nbytes!r}")
    try:
        value = operator.index(nbytes)
    except TypeError:
        raise TypeError(f"set_workspace_limit: nbytes must be an int, got {nbytes!r}") from None
    if not 1 << 20 <= value <= 1 << 50:
        raise ValueError(f"set_workspace_limit: nbytes must be between 1 MiB and 1 PiB, got {value}")
    _core.set_workspace_limit(value)


def get_workspace_limit() -> int:
    """The scratch memory cap of set_workspace_limit, in bytes."""
    return _core.workspace_limit()


def cpu_capability() -> str:
    """The micro-kernel path in use: 'avx512', 'avx2' or 'ref' (FASTBP_CPU_CAPABILITY forces one)."""
    return _core.cpu_capability()


_OPENMP_SPECS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
                 201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}
_OPENMP_RUNTIMES = {"libgomp": "GNU libgomp", "libomp": "LLVM libomp", "libiomp": "Intel libiomp"}


def _openmp(info: dict[str, Any]) -> dict[str, Any]:
    spec, library = info["openmp_spec"], info["openmp_library"]
    if not spec:
        return {"enabled": False, "runtime": None, "library": None, "version": None}
    name = os.path.basename(library)
    runtime = next((v for k, v in _OPENMP_RUNTIMES.items() if name.startswith(k)), name or "unknown")
    return {"enabled": True, "runtime": runtime, "library": library or None,
            "version": f"OpenMP {_OPENMP_SPECS.get(spec, '?')} ({spec})"}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _config() -> dict[str, Any]:
    import numpy as np

    info = _core.build_info()
    return {
        "fastbp": {"version": _core.__version__, "location": os.path.dirname(_core.__file__)},
        "python": {"version": sys.version.split()[0], "machine": platform.machine()},
        "numpy": {"version": np.__version__},
        "build": {"compiler": info["compiler"], "build_type": info["build_type"],
                  "cxx_flags": info["cxx_flags"], "kernel_flags": info["kernel_flags"]},
        "openmp": _openmp(info),
        "threads": get_num_threads(),
        "cpu": {"model": _cpu_model(), "logical_cpus": os.cpu_count(),
                "capabilities": list(_core.supported_capabilities()),
                "in_use": cpu_capability(),
                "alu_on_fma_ports": _core.alu_on_fma_ports()},
        "gemm_blocking": {dt: _core.gemm_blocking(dt) for dt in ("float32", "float64")},
    }


def show_config(mode: str = "stdout", file=None) -> dict[str, Any] | None:
    """Print how this fastbp was built and what it runs on; ``mode='dicts'`` returns the same
    information as a dict instead."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"show_config: mode must be 'stdout' or 'dicts', got {mode!r}")
    c = _config()
    if mode == "dicts":
        return c
    omp = c["openmp"]
    lines = [
        f"fastbp {c['fastbp']['version']} ({c['fastbp']['location']})",
        f"  python:        {c['python']['version']} ({c['python']['machine']})",
        f"  numpy:         {c['numpy']['version']}",
        f"  compiler:      {c['build']['compiler']}, {c['build']['build_type']} build",
        f"  flags:         {c['build']['cxx_flags']}",
        f"  kernel flags:  {c['build']['kernel_flags'] or 'none (portable kernels only)'}",
        "  openmp:        " + (f"{omp['runtime']}, {omp['version']}, {omp['library']}" if omp["enabled"]
                              else "no (single-threaded build)"),
        f"  threads:       {c['threads']}",
        f"  cpu:           {c['cpu']['model']}, {c['cpu']['logical_cpus']} logical CPUs",
        f"  cpu paths:     {', '.join(c['cpu']['capabilities'])} (in use: {c['cpu']['in_use']})",
        "  in place:      " + ("less (ALU work shares the FMA ports: packs crossing pixels, "
                              "weights of batches over 96)" if c["cpu"]["alu_on_fma_ports"]
                              else "pixels and weights read in place where they can be"),
    ]
    for dtype, b in c["gemm_blocking"].items():
        lines.append(f"  gemm {dtype}:  tile {b['mr']}x{b['nr']}, mc {b['mc']}, kc {b['kc']}, nc {b['nc']}")
    print("\n".join(lines), file=file or sys.stdout)
    return None
