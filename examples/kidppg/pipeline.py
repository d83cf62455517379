"""The steps around the network: per-window z-scoring and its inverse, KID-PPG's temporal pairs,
the classical spectral-peak estimate, and the error measure."""
from __future__ import annotations

import numpy as np

FS = 32  # Hz


def zscore(x):
    """Each window and channel of x (N, C, L) to zero mean and unit variance; returns
    (normalised, mean (N, C), std (N, C)). A constant channel (std 0) is only centred."""
    mean = x.mean(axis=-1)
    std = x.std(axis=-1)
    scale = np.where(std == 0, 1.0, std)
    return (x - mean[..., None]) / scale[..., None], mean, std


def denormalise(x, mean, std):
    """Inverse of `zscore` for x (N, L) with one channel's mean (N,) and std (N,)."""
    return x * np.where(std == 0, 1.0, std)[:, None] + mean[:, None]


def temporal_pairs(ppg, y):
    """ppg (N, L) -> pairs (N - 1, L, 2) = [window n, window n + 1] in KID-PPG's input layout,
    each labelled with y(n + 1)."""
    return np.stack([ppg[:-1], ppg[1:]], axis=-1), y[1:]


def spectral_peak_bpm(ppg, low=0.5, high=3.5, nfft=4096):
    """Classical baseline: strongest peak of the Hann-windowed spectrum of ppg (N, L) within
    [low, high] Hz, in bpm."""
    centred = ppg - ppg.mean(axis=-1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(centred * np.hanning(ppg.shape[-1]), nfft))
    f = np.fft.rfftfreq(nfft, 1 / FS)
    band = (f >= low) & (f <= high)
    return 60 * f[band][spectrum[:, band].argmax(axis=1)]


def mae(estimate, reference) -> float:
    return float(np.abs(np.asarray(estimate, np.float64) - reference).mean())
