"""KID-PPG's adaptive linear filter, fitted per recording with fastbp.

The accelerometer explains part of the PPG (motion artifacts that couple linearly). A linear
model predicts the z-scored PPG of each window from its z-scored 3-axis accelerometer, and
what it cannot predict is kept: filtered = ppg - prediction. The model is two convolutions on
the (3 axes x 256 samples) image: Conv2d(1, 1, (3, 21), padding='same'), then
Conv2d(1, 1, (3, 1)) that combines the three axes. It is fitted full-batch on all windows of
the recording by SGD (lr 1e-7, momentum 0.01, 1000 steps, Glorot-uniform start, zero biases)
on the squared distance of the spectra, summed over the 256 FFT bins, meaned over windows.
"""
from __future__ import annotations

import math

import numpy as np

import fastbp
from fastbp import nn, optim
from fastbp.tensor import Function

STEPS = 1000
LR = 1e-7
MOMENTUM = 0.01


def glorot_uniform_(param, rng) -> None:
    """U(-b, b), b = sqrt(6 / (fan_in + fan_out)): Keras's default kernel initialiser, which
    the recipe starts from (fans of a conv weight (out, in, kh, kw): in*kh*kw, out*kh*kw)."""
    out_channels, in_channels, *kernel = param.shape
    field = math.prod(kernel)
    bound = math.sqrt(6.0 / (in_channels * field + out_channels * field))
    param.data[...] = rng.uniform(-bound, bound, size=param.shape)


class AdaptiveLinearFilter(nn.Module):
    """acc (N, 3, L) -> predicted PPG (N, L)."""

    def __init__(self, rng=None):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.spatial = nn.Conv2d(1, 1, (3, 21), padding="same")
        self.combine = nn.Conv2d(1, 1, (3, 1))
        for conv in (self.spatial, self.combine):
            glorot_uniform_(conv.weight, rng)
            assert conv.bias is not None
            conv.bias.data[...] = 0

    def forward(self, acc):
        n, axes, length = acc.shape
        return self.combine(self.spatial(acc.reshape(n, 1, axes, length))).reshape(n, length)


class SpectralLoss(Function):
    """mean over windows of sum over FFT bins |FFT(target) - FFT(pred)|^2, in float64.
    With E = FFT(pred - target) the gradient is (2 / N) FFT^H E = (2 L / N) real(IFFT(E))
    (numpy's ifft carries 1 / L)."""

    def forward(self, pred, target):
        self.error = np.fft.fft(pred.astype(np.float64) - target.astype(np.float64), axis=-1)
        return np.asarray((np.abs(self.error) ** 2).sum(axis=-1).mean())

    def backward(self, g):
        n, length = self.error.shape
        grad = (2.0 * length / n) * np.fft.ifft(self.error, axis=-1).real
        return grad * g, None


def spectral_loss(pred, target):
    return SpectralLoss.apply(pred, target)


def fit(x_norm, steps: int = STEPS, lr: float = LR, momentum: float = MOMENTUM, seed=0,
        model: AdaptiveLinearFilter | None = None):
    """Fit a filter on z-scored windows x_norm (N, 4, L) [ppg, acc x, y, z], float32 throughout
    as in the authors' run. Returns (filtered z-scored PPG (N, L) float64, model, losses)."""
    x_norm = np.asarray(x_norm)
    acc = fastbp.Tensor(np.ascontiguousarray(x_norm[:, 1:], dtype=np.float32))
    target = fastbp.Tensor(np.ascontiguousarray(x_norm[:, 0], dtype=np.float32))
    if model is None:
        model = AdaptiveLinearFilter(np.random.default_rng(seed))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = np.empty(steps)
    for step in range(steps):
        loss = spectral_loss(model(acc), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[step] = loss.item()
    with fastbp.no_grad():
        prediction = model(acc).data
    return target.data.astype(np.float64) - prediction, model, losses
