"""clip_grad_norm_ as torch.nn.utils.clip_grad_norm_."""
from __future__ import annotations

import math

import numpy as np

from ...tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients in place so that their joint norm is at most max_norm; returns the
    norm before clipping. As torch, every gradient is multiplied by min(1, max_norm / (norm +
    1e-6))."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, np.float32))
    norm_type = float(norm_type)
    dtype = grads[0].dtype
    if norm_type == math.inf:
        norms = [np.abs(g).max(initial=0) for g in grads]
        total = np.max(norms).astype(dtype)
    else:
        norms = [np.sum(np.abs(g, dtype=g.dtype) ** norm_type) ** (1 / norm_type) for g in grads]
        total = (np.sum(np.array(norms, dtype) ** norm_type) ** (1 / norm_type)).astype(dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           f"is non-finite, so it cannot be clipped")
    coef = min(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    for g in grads:
        g *= g.dtype.type(coef)
    return Tensor(np.asarray(total))
