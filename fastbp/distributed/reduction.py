"""Averages of flat numpy buffers over the ranks, the same bits run to run.

MPI_Allreduce leaves the order of its additions to the implementation (it may change with the
message size, the algorithm MPI picks, or the placement of the ranks), and float addition is not
associative. Here MPI only moves data: Alltoall hands rank r the r-th chunk of every rank's
buffer, rank r adds those chunks in rank order 0, 1, ..., P-1, and Allgather returns the summed
chunks to everyone. That moves as much data as a ring allreduce, 2 (P - 1) / P of the buffer per
rank, and every element is ((x0 + x1) + x2) + ... whatever the MPI library or network.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["padded_size", "RankOrderSum"]


def padded_size(n: int, world_size: int) -> int:
    """Smallest multiple of world_size that holds n elements (at least world_size: no empty chunks)."""
    return max(1, -(-n // world_size)) * world_size


class RankOrderSum:
    """Sum (or mean) over the ranks of one flat buffer, in place, in two non-blocking phases:
    start() after the buffer is filled, finish() to get the result in the same buffer.
    The buffer's length must be a multiple of the communicator's size. `seconds` accumulates the
    time spent inside MPI calls and the local sums (the communication a step waits for)."""

    def __init__(self, comm, buffer: np.ndarray, average: bool = True):
        self.comm = comm
        self.world_size = comm.Get_size()
        if buffer.ndim != 1 or len(buffer) % self.world_size:
            raise ValueError(f"RankOrderSum: buffer must be flat with a length that is a multiple of "
                             f"{self.world_size} ranks, got shape {buffer.shape}")
        self.buffer = buffer
        self.average = average
        self.chunk = len(buffer) // self.world_size
        self.received = np.empty_like(buffer) if self.world_size > 1 else buffer
        self.summed = np.empty(self.chunk, buffer.dtype)
        self.request: Any = None
        self.seconds = 0.0

    def start(self) -> None:
        """Send chunk j of this rank's buffer to rank j (non-blocking)."""
        if self.world_size == 1:
            return
        t0 = time.perf_counter()
        self.request = self.comm.Ialltoall(self.buffer, self.received)
        self.seconds += time.perf_counter() - t0

    def reduce_own_chunk(self) -> None:
        """Wait for the chunks, add them in rank order, and start returning the sum to everyone."""
        if self.world_size == 1:
            return
        t0 = time.perf_counter()
        self.request.Wait()
        parts = self.received.reshape(self.world_size, self.chunk)
        np.copyto(self.summed, parts[0])
        for part in parts[1:]:  # one add per rank, in rank order: no pairwise or blocked sums
            self.summed += part
        if self.average:
            self.summed /= self.world_size
        self.request = self.comm.Iallgather(self.summed, self.buffer)
        self.seconds += time.perf_counter() - t0

    def finish(self) -> np.ndarray:
        """Wait until the buffer holds the sum (or mean) over all ranks; returns the buffer."""
        if self.request is not None:
            t0 = time.perf_counter()
            self.request.Wait()
            self.request = None
            self.seconds += time.perf_counter() - t0
        return self.buffer

    def run(self) -> np.ndarray:
        """All three phases, blocking."""
        self.start()
        self.reduce_own_chunk()
        return self.finish()
