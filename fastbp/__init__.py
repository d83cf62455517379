"""fastbp: fast, exact CPU forward and backward passes for conv1d, conv2d and linear layers."""
import os as _os
from importlib.machinery import EXTENSION_SUFFIXES as _SUFFIXES

try:
    from . import _core
except ImportError as _error:
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if any(_os.path.exists(_os.path.join(_here, "_core" + s)) for s in _SUFFIXES):
        raise ImportError(f"fastbp's compiled module in {_here} failed to load: {_error}") from _error
    raise ImportError(
        f"fastbp was imported from {_here}, a source tree without its compiled module _core. "
        f"This happens when Python runs in the root of a fastbp checkout, whose fastbp/ folder "
        f"hides the installed package. Install fastbp (`pip install .`) and either use the "
        f"`fastbp` command or run Python from another folder; or make an editable install "
        f"(`pip install --no-build-isolation -e .`)."
    ) from None

_core.init_dispatch()  # reads FASTBP_CPU_CAPABILITY; ValueError when it is unknown or unsupported

from .functional import (conv1d, conv1d_backward, conv2d, conv2d_backward, linear,
                         linear_backward, matmul)
from .functional import (batched_matmul, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose2d, conv_transpose2d_backward)
from .runtime import (cpu_capability, get_flush_denormal, get_num_threads, get_workspace_limit,
                      set_flush_denormal, set_num_threads, set_workspace_limit, show_config,
                      threads)
from .tensor import Tensor, no_grad
from .tensor import cat, enable_grad, stack, where
from .serialization import load, save
from . import nn, optim, reference
from . import distributed  # mpi4py is imported on first use (pip install "fastbp[mpi]")
from .nn.init import manual_seed

__version__: str = _core.__version__

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "linear", "linear_backward",
    "matmul", "batched_matmul", "conv_transpose1d", "conv_transpose1d_backward",
    "conv_transpose2d", "conv_transpose2d_backward",
    "Tensor", "no_grad", "enable_grad", "cat", "stack", "where", "save", "load",
    "nn", "optim", "reference", "distributed", "manual_seed",
    "set_num_threads", "get_num_threads", "threads", "cpu_capability", "show_config",
    "set_workspace_limit", "get_workspace_limit", "set_flush_denormal", "get_flush_denormal",
    "__version__",
]
