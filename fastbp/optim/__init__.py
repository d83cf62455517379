"""SGD, Adam, AdamW and RMSprop with PyTorch's update rules (torch.optim, single-tensor path),
applied in place to param.data in the parameter's dtype; lr_scheduler beside them."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]


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

    def state_dict(self) -> dict:
        """As torch: {'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]},
        parameters numbered in order over the groups; arrays are copies."""
        index: dict[int, int] = {}
        groups: list[dict] = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append(dict({k: v for k, v in group.items() if k != "params"}, params=ids))
        state = {index[k]: {name: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                            for name, v in st.items()}
                 for k, st in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict has a different number of parameter groups or "
                             "parameters per group than this optimizer")
        params = {}
        for saved, own in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], own["params"]):
                params[i] = p
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            self.state[id(p)] = {name: np.array(v, dtype=p.dtype) if isinstance(v, np.ndarray) and v.ndim
                                 else v for name, v in st.items()}


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

    decoupled = False  # AdamW decays the weights directly

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
                if self.decoupled:  # AdamW: shrink the weights, not the gradient
                    p.data *= _scalar(1 - lr * weight_decay, t)
                elif weight_decay != 0:
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


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g^2; centered: avg = sqrt(v - m^2) + eps with m = lerp(m, g,
    1 - alpha), else sqrt(v) + eps; with momentum b = momentum b + g / avg, p -= lr b;
    else p -= lr g / avg."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0 or momentum < 0 or alpha < 0:
            raise ValueError(f"invalid RMSprop settings: lr={lr}, alpha={alpha}, eps={eps}, "
                             f"weight_decay={weight_decay}, momentum={momentum}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def step(self) -> None:
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p, state in self._params_with_grad(group):
                t = p.data.dtype
                g = p.grad.astype(t, copy=False)
                if not state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if centered:
                        state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                if weight_decay != 0:
                    g = g + _scalar(weight_decay, t) * p.data
                v = state["square_avg"]
                v *= _scalar(alpha, t)
                v += _scalar(1 - alpha, t) * (g * g)
                if centered:
                    m = state["grad_avg"]
                    m += _scalar(1 - alpha, t) * (g - m)  # lerp with weight 1 - alpha
                    avg = np.sqrt(v - m * m) + _scalar(eps, t)
                else:
                    avg = np.sqrt(v) + _scalar(eps, t)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= _scalar(momentum, t)
                    buf += g / avg
                    p.data -= _scalar(lr, t) * buf
                else:
                    p.data -= _scalar(lr, t) * (g / avg)


from . import lr_scheduler  # noqa: E402,F401  (imported so optim.lr_scheduler works as an attribute)
