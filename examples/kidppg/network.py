"""The KID-PPG network on fastbp.nn, layer by layer as architecture.py describes it, with the
state_dict keys that keras_weights.py converts the published weights to.

The two windows of a pair go through the same convolution blocks; they are stacked along the
batch axis and go through together (one conv call per layer instead of two; the gradients of
the shared weights are the same sums). When the pairs are consecutive windows of a recording,
[w0, w1], [w1, w2], ..., each window goes through the blocks once instead of twice: half the
convolution work, the same result up to rounding."""
from __future__ import annotations

import numpy as np

import fastbp
import fastbp.nn.functional as F
from fastbp import nn

from . import architecture as arch


class ConvBlock(nn.Module):
    """3 x [causal pad -> Conv1d(k 5, dilation 2) -> ReLU] -> AvgPool1d."""

    def __init__(self, c_in: int, c_out: int, pool: int, dtype=np.float32, rng=None):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in if i == 0 else c_out, c_out, arch.KERNEL_SIZE, dilation=arch.DILATION,
                      dtype=dtype, rng=rng)
            for i in range(arch.CONVS_PER_BLOCK))
        self.pool = nn.AvgPool1d(pool)

    def forward(self, x):
        for conv in self.convs:
            # Keras 'causal': pad on the left; forward_relu applies the ReLU as the conv writes
            x = conv.forward_relu(F.pad(x, (arch.CAUSAL_PAD, 0)))
        return self.pool(x)


class KIDPPG(nn.Module):
    """pairs (N, 256, 2) -> (N, 2): the heart-rate mean and the std before its softplus."""

    def __init__(self, dtype=np.float32, rng=None):
        super().__init__()
        c_in = (1,) + arch.FILTERS[:-1]
        self.blocks = nn.ModuleList(ConvBlock(i, o, p, dtype, rng)
                                    for i, o, p in zip(c_in, arch.FILTERS, arch.POOLS))
        self.attention = nn.MultiheadAttention(arch.EMBED_DIM, arch.NUM_HEADS, batch_first=True,
                                               dtype=dtype, rng=rng)
        self.norm = nn.LayerNorm(arch.EMBED_DIM, eps=arch.LAYER_NORM_EPS, dtype=dtype)
        self.hidden = nn.Linear(arch.STEPS * arch.EMBED_DIM, arch.HIDDEN, dtype=dtype, rng=rng)
        self.dropout = nn.Dropout(arch.HIDDEN_DROPOUT)
        self.output = nn.Linear(arch.HIDDEN, arch.OUTPUTS, dtype=dtype, rng=rng)

    def features(self, windows):
        """windows (M, 256) -> (M, 16, 64): the conv blocks, time-major as Keras."""
        x = windows.reshape(windows.shape[0], 1, arch.WINDOW)
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2)

    def forward(self, pairs):
        pairs = fastbp.tensor.as_tensor(pairs)
        check_pairs(pairs.data)
        n = pairs.shape[0]
        if is_chain(pairs):
            # consecutive windows of a recording: each goes through the blocks once
            x = self.features(fastbp.cat([pairs[:, :, 0], pairs[-1:, :, 1]]))
            previous, current = x[:-1], x[1:]
        else:
            # all windows n, then all windows n + 1, as one batch
            x = self.features(pairs.permute(2, 0, 1).reshape(2 * n, arch.WINDOW))
            previous, current = x[:n], x[n:]
        attended, _ = self.attention(current, previous, previous, need_weights=False)
        h = self.norm(attended + current)
        h = self.dropout(F.relu(self.hidden(h.flatten(1))))
        return self.output(h)


def is_chain(pairs) -> bool:
    """True when window n + 1 of each pair is window n of the next, as in the pairs of one
    recording, and no gradient is asked for the input (which one of the two equal copies a
    window's gradient would go to is arbitrary). Parameter gradients are the same either way."""
    a = pairs.data
    return not pairs.requires_grad and len(a) > 1 and np.array_equal(a[1:, :, 0], a[:-1, :, 1])


def check_pairs(pairs) -> None:
    """ValueError/TypeError unless pairs is a float array (N, 256, 2)."""
    shape = np.shape(pairs)
    if len(shape) != 3 or shape[1:] != (arch.WINDOW, 2):
        raise ValueError(f"pairs must have shape (N, {arch.WINDOW}, 2) (KID-PPG's layout: window "
                         f"n, window n + 1), got {shape}")
    dtype = np.asarray(pairs).dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"pairs must be float32 or float64, got {dtype}")


def mean_std(out):
    """Network output (N, 2) -> mean (N,), std (N,) = 1 + softplus(out[:, 1])."""
    return out[:, 0], F.softplus(out[:, 1]) + 1


def gaussian_nll(out, target):
    """The authors' training loss: -log N(target; mean, std), meaned over the batch."""
    mean, std = mean_std(out)
    return F.gaussian_nll_loss(mean, target, std * std, full=True)


def build_network(state_dict=None, dtype=np.float32) -> KIDPPG:
    """KID-PPG as a fastbp.nn.Module in eval mode, loaded with `state_dict` (torch keys and
    layouts, e.g. keras_weights.load_state_dict(wheel)) when given."""
    model = KIDPPG(dtype=dtype)
    if state_dict is not None:
        model.load_state_dict(state_dict)  # cast to the model's dtype
    return model.eval()


def predict(model: KIDPPG, pairs, batch_size: int = 256):
    """pairs (N, 256, 2) -> mean (N,), std (N,) as numpy arrays in the model's dtype, without
    recording gradients (in the model's current mode: eval for the published behaviour)."""
    check_pairs(pairs)
    dtype = next(iter(model.parameters())).dtype
    pairs = np.asarray(pairs, dtype=dtype)
    means, stds = [], []
    with fastbp.no_grad():
        for i in range(0, max(len(pairs), 1), batch_size):
            mean, std = mean_std(model(pairs[i:i + batch_size]))
            means.append(mean.data)
            stds.append(std.data)
    return np.concatenate(means), np.concatenate(stds)
