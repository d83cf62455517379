"""Parameter initialisation as PyTorch does it, drawn from one numpy Generator.

`manual_seed(seed)` resets that generator, so models built after it are reproducible; every
layer also takes `rng=` to draw from a generator of your own instead.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["manual_seed", "default_rng", "uniform_", "kaiming_uniform_", "xavier_uniform_", "zeros_", "ones_", "constant_", "normal_"]

_rng = np.random.default_rng()
_dropout_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator that layer initialisation draws from, and dropout's own generator
    (a separate stream of the same seed); returns the first."""
    global _rng, _dropout_rng
    _rng = np.random.default_rng(seed)
    _dropout_rng = np.random.default_rng([seed, 1])
    return _rng


def dropout_rng() -> np.random.Generator:
    """The generator dropout masks are drawn from."""
    return _dropout_rng


def default_rng() -> np.random.Generator:
    return _rng


def uniform_(tensor, low: float, high: float, rng=None):
    """Fill tensor.data in place with U(low, high), keeping its dtype."""
    rng = _rng if rng is None else rng
    tensor.data[...] = rng.uniform(low, high, size=tensor.shape)
    return tensor


def kaiming_uniform_(tensor, a: float = 0.0, fan_in: int | None = None, rng=None):
    """U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky_relu gain).
    With a = sqrt(5), PyTorch's default for Linear and Conv weights, b = 1 / sqrt(fan_in)."""
    if fan_in is None:
        fan_in = int(np.prod(tensor.shape[1:]))
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return uniform_(tensor, -bound, bound, rng)


def xavier_uniform_(tensor, gain: float = 1.0, rng=None):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)), as torch.nn.init.xavier_uniform_."""
    receptive = int(np.prod(tensor.shape[2:])) if len(tensor.shape) > 2 else 1
    fan_in, fan_out = tensor.shape[1] * receptive, tensor.shape[0] * receptive
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(tensor, -bound, bound, rng)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, rng=None):
    rng = _rng if rng is None else rng
    tensor.data[...] = rng.normal(mean, std, size=tensor.shape)
    return tensor


def constant_(tensor, value: float):
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)
