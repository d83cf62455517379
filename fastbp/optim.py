"""SGD and Adam with PyTorch's update rules (torch.optim, single-tensor path), applied in place
to param.data in the parameter's dtype."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Holds param groups (dicts with 'params' plus hyper-parameters) and per-parameter state."""

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        for group in groups:
            group = dict(defaults, **group)
            group["params"] = list(group["params"])
            for p in group["params"]:
                if not getattr(p, "requires_grad", False):
                    raise ValueError("optimizer can only optimize tensors that require grad")
            self.param_groups.append(group)
        self.state: dict = {}  # id(param) -> dict

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                yield p, self.state.setdefault(id(p), {})

    def step(self) -> None:
        raise NotImplementedError


def _scalar(value, dtype):
    # round hyper-parameters to the parameter dtype, as torch's float32 kernels do
    return dtype.type(value)


class SGD(Optimizer):
    """p -= lr * d, where g = grad + weight_decay * p; with momentum the buffer b starts as g and
    then b = momentum * b + (1 - dampening) * g; d = g + momentum * b (nesterov) or b."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid SGD settings: lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay} must all be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p, state in self._params_with_grad(group):
                t = p.data.dtype
                g = p.grad.astype(t, copy=False)
                if weight_decay != 0:
                    g = g + _scalar(weight_decay, t) * p.data
                if momentum != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g, dtype=t)
                    else:
                        buf *= _scalar(momentum, t)
                        buf += _scalar(1 - dampening, t) * g
                    g = g + _scalar(momentum, t) * buf if nesterov else buf
                p.data -= _scalar(lr, t) * g


class Adam(Optimizer):
    """m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        beta1, beta2 = betas
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=(beta1, beta2), eps=eps,
                                      weight_decay=weight_decay))

    def step(self) -> None:
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay = group["weight_decay"]
            for p, state in self._params_with_grad(group):
                t = p.data.dtype
                g = p.grad.astype(t, copy=False)
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if weight_decay != 0:
                    g = g + _scalar(weight_decay, t) * p.data
                w = 1 - beta1  # m = lerp(m, g, w), evaluated as torch's lerp does
                if w < 0.5:
                    m += _scalar(w, t) * (g - m)
                else:
                    m[...] = g - (g - m) * _scalar(1 - w, t)
                v *= _scalar(beta2, t)
                v += _scalar(1 - beta2, t) * (g * g)
                step_size = lr / (1 - beta1 ** step)
                denom = np.sqrt(v) / _scalar(math.sqrt(1 - beta2 ** step), t) + _scalar(eps, t)
                p.data -= _scalar(step_size, t) * (m / denom)
