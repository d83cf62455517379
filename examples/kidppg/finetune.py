"""Fine-tuning the published network on one recording with fastbp's backward and Adam, and the
split that keeps the evaluation half unseen.

The recipe is fixed in advance (the authors' loss and learning rate, Keras's default batch size,
a few epochs), never tuned on the half it is evaluated on."""
from __future__ import annotations

import numpy as np

from fastbp import nn, optim

from . import architecture as arch
from . import network

EPOCHS = 10
BATCH_SIZE = 32
# Windows are 8 s long every 2 s, so a pair (two windows) spans 10 s; the last 4 pairs of the
# first half share samples with the first pair of the second half and are left out of training.
GAP = 4


def split_halves(pairs, target, gap: int = GAP):
    """((train pairs, train target), (test pairs, test target)): the first half of the
    recording without its last `gap` pairs, and the second half."""
    half = len(pairs) // 2
    if half <= gap:
        raise ValueError(f"split_halves: {len(pairs)} pairs are too few to split with a gap "
                         f"of {gap}")
    return (pairs[:half - gap], target[:half - gap]), (pairs[half:], target[half:])


def finetune(model, pairs, target, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE,
             lr: float = arch.ADAM_LR, seed: int = 0) -> np.ndarray:
    """Adam on the Gaussian NLL over shuffled mini-batches, dropout active; returns the mean
    loss of each epoch and leaves the model in eval mode."""
    dtype = next(iter(model.parameters())).dtype
    pairs, target = np.asarray(pairs, dtype), np.asarray(target, dtype)
    rng = nn.manual_seed(seed)  # the shuffling here, and dropout's masks
    opt = optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = np.zeros(epochs)
    for epoch in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(pairs), batch_size):
            batch = order[start:start + batch_size]
            loss = network.gaussian_nll(model(pairs[batch]), target[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[epoch] += loss.item() * len(batch) / len(pairs)
    model.eval()
    return losses
