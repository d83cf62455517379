"""fastbp: fast, exact CPU forward and backward passes for conv1d, conv2d and linear layers."""
from . import _core

_core.init_dispatch()  # reads FASTBP_CPU_CAPABILITY; ValueError when it is unknown or unsupported

from .functional import (conv1d, conv1d_backward, conv2d, conv2d_backward, linear,
                         linear_backward, matmul)
from .functional import (batched_matmul, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose2d, conv_transpose2d_backward)
from .tensor import Tensor, no_grad
from .tensor import cat, enable_grad, stack, where
from .serialization import load, save
from . import nn, optim, reference
from .nn.init import manual_seed

__version__ = _core.__version__

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "linear", "linear_backward",
    "matmul", "Tensor", "no_grad", "nn", "optim", "manual_seed", "set_num_threads", "get_num_threads", "cpu_capability", "show_config",
    "__version__",
]
__all__ += ["cat", "stack", "where", "enable_grad", "save", "load"]
__all__ += ["batched_matmul", "conv_transpose1d", "conv_transpose1d_backward", "conv_transpose2d",
            "conv_transpose2d_backward"]


_MAX_THREADS = 1024


def set_num_threads(n):
    """Set how many threads fastbp's kernels use (results are identical for any count).

    In a child made by fork() after the parent ran threaded work, fastbp stays on one thread:
    the OpenMP runtime's worker threads do not survive a fork. A build without OpenMP always
    runs on one thread (get_num_threads() says 1; show_config() says why).
    """
    import operator
    if isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    n = operator.index(n)
    if not 1 <= n <= _MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be between 1 and {_MAX_THREADS}, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """Number of threads fastbp's kernels use."""
    return _core.get_num_threads()


def cpu_capability():
    """The micro-kernel path in use: 'avx512', 'avx2' or 'ref' (FASTBP_CPU_CAPABILITY forces one)."""
    return _core.cpu_capability()


def show_config(file=None):
    """Print how this fastbp was built and what it runs on."""
    import platform
    import sys

    import numpy as np

    lines = [
        f"fastbp {__version__}",
        f"  python:        {sys.version.split()[0]} ({platform.machine()})",
        f"  numpy:         {np.__version__}",
        f"  compiler:      {_core.compiler()}",
        f"  openmp:        {'yes' if _core.has_openmp() else 'no (single-threaded build)'}",
        f"  threads:       {get_num_threads()}",
        f"  cpu paths:     {', '.join(_core.supported_capabilities())}",
        f"  active path:   {cpu_capability()}",
    ]
    for dtype in ("float32", "float64"):
        b = _core.gemm_blocking(dtype)
        lines.append(f"  gemm {dtype}:  tile {b['mr']}x{b['nr']}, mc {b['mc']}, kc {b['kc']}, nc {b['nc']}")
    print("\n".join(lines), file=file or sys.stdout)
