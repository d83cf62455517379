"""DistributedSampler: each rank's share of a data set's indices, epoch by epoch."""
from __future__ import annotations

import operator

import numpy as np

__all__ = ["DistributedSampler"]


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"DistributedSampler: {name} must be at least {minimum}, got {value}")
    return value


class DistributedSampler:
    """The indices of rank `rank` out of `num_replicas`, with torch.utils.data.DistributedSampler's
    rules, for a data set of len(dataset) samples (or `dataset` samples when it is an int):

    - shuffle=True permutes all indices with a generator seeded by (seed, epoch): every rank
      draws the same permutation, so call set_epoch(epoch) on every rank before each epoch;
    - without drop_last, the permuted list is padded by repeating its start until it divides
      evenly, so every rank gets ceil(n / num_replicas) indices and a few samples count twice;
      with drop_last, its tail is dropped instead (floor(n / num_replicas) each);
    - rank r takes every num_replicas-th index starting at r.

    The permutation comes from numpy, so it differs from torch's for the same seed; the padding,
    the dropping and the interleaving are torch's. num_replicas and rank default to the process
    group's (fastbp.distributed.world_size() and rank()).
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if isinstance(dataset, (int, np.integer)) and not isinstance(dataset, bool):
            self.dataset_size = _count(dataset, "dataset (a size)", 0)
        elif hasattr(dataset, "__len__"):
            self.dataset_size = len(dataset)
        else:
            raise TypeError(f"DistributedSampler: dataset must be a size (int) or have a len(), "
                            f"got {type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from . import comm
            num_replicas = comm.world_size() if num_replicas is None else num_replicas
            rank = comm.rank() if rank is None else rank
        self.num_replicas = _count(num_replicas, "num_replicas", 1)
        self.rank = _count(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be below num_replicas="
                             f"{self.num_replicas}, got {self.rank}")
        self.shuffle = bool(shuffle)
        self.seed = _count(seed, "seed", 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n, p = self.dataset_size, self.num_replicas
        if self.drop_last and n % p:
            self.num_samples = max(0, -(-(n - p) // p))  # ceil((n - p) / p), as torch
        else:
            self.num_samples = -(-n // p)
        self.total_size = self.num_samples * p

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch (the same on every rank)."""
        self.epoch = _count(epoch, "epoch", 0)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an int64 array."""
        n = self.dataset_size
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n and n > 0:
            order = np.resize(order, self.total_size)  # repeats the list from its start
        order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
