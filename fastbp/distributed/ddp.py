"""DistributedDataParallel: a Module wrapper whose backward() returns with the gradients already
averaged over the ranks, reduced in a few flat buckets while the backward pass runs."""
from __future__ import annotations

import contextlib
import functools
import time

import numpy as np

from ..nn import Module
from ..tensor import Tensor, is_grad_enabled
from .comm import broadcast_parameters, broadcast_tensors, get_comm
from .reduction import RankOrderSum, padded_size

__all__ = ["DistributedDataParallel"]


class _Slot:
    """Where one parameter's gradient sits in its bucket, and whether it arrived this round."""

    def __init__(self, name: str, param, offset: int):
        self.name, self.param, self.offset = name, param, offset
        self.shape, self.size, self.dtype = param.shape, param.data.size, param.dtype
        self.ready = self.used = False


class _Bucket:
    def __init__(self, slots: list, comm):
        self.slots = slots
        size = sum(slot.size for slot in slots)
        self.flat = np.zeros(padded_size(size, comm.Get_size()), slots[0].dtype)
        self.reduction = RankOrderSum(comm, self.flat, average=True)
        self.waiting = len(slots)

    def view(self, slot: _Slot) -> np.ndarray:
        return self.flat[slot.offset:slot.offset + slot.size].reshape(slot.shape)


def _make_buckets(named_params: list, cap_bytes: int, comm) -> list:
    """Greedy buckets of at most cap_bytes (a larger parameter gets one of its own), one dtype
    each, in the given order (reversed registration order: roughly when backward reaches them)."""
    groups: list = []
    current: list = []
    current_bytes = 0
    for name, param in named_params:
        nbytes = param.data.nbytes
        if current and (current_bytes + nbytes > cap_bytes or param.dtype != current[0][1].dtype):
            groups.append(current)
            current, current_bytes = [], 0
        current.append((name, param))
        current_bytes += nbytes
    if current:
        groups.append(current)
    buckets = []
    for group in groups:
        slots, offset = [], 0
        for name, param in group:
            slots.append(_Slot(name, param, offset))
            offset += param.data.size
        buckets.append(_Bucket(slots, comm))
    return buckets


def _leaves_reached(outputs) -> set:
    """ids of the leaf tensors the graphs of `outputs` (Tensors, possibly nested in tuples,
    lists or dicts) depend on."""
    stack, reached = [outputs], set[int]()
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            if item.requires_grad:
                reached.update(id(t) for t in item._topological_order() if t.is_leaf)
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return reached


class DistributedDataParallel(Module):
    """Data-parallel training over MPI: every rank holds the same `module` and trains it on its
    own share of each batch; backward() returns with every parameter's .grad equal, on every
    rank, to the mean over the ranks of the local gradients. An optimizer stepping after it
    keeps the ranks' parameters equal.

    - Rank 0's parameters and buffers are copied to every rank at construction
      (broadcast_parameters); with broadcast_buffers=True, buffers (e.g. BatchNorm's running
      statistics) again at every training forward.
    - Gradients travel in flat buckets of at most bucket_cap_mb MiB (one dtype each), filled as
      backward produces them (post-accumulate-grad hooks); a full bucket starts its reduction
      while backward goes on, and the last gradient completes them all.
    - The average is computed in rank order (reduction.RankOrderSum), so for a given number of
      ranks the result is the same bits run to run, whatever the MPI library does.
    - A forward under no_sync() (or with grad disabled) does not reduce: its backward
      accumulates locally, for gradient accumulation; the next synced backward reduces the sum.
    - Every parameter that requires grad must get a gradient in each synced backward, unless
      find_unused_parameters=True: then parameters outside the forward's graph count as zero
      (their .grad is set only where some rank used them), at the cost of a graph walk and one
      small extra message per step.

    The wrapper's state_dict has the wrapped module's keys under 'module.', as in PyTorch; save
    `ddp.module.state_dict()` for a checkpoint a single process loads. `communication_seconds`
    is this rank's time spent waiting on gradient and buffer communication so far.
    """

    def __init__(self, module, *, broadcast_buffers: bool = True, bucket_cap_mb: float = 25.0,
                 find_unused_parameters: bool = False, process_group=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a fastbp.nn.Module, got "
                            f"{type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, "
                             f"got {bucket_cap_mb!r}")
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("DistributedDataParallel: the module has no parameter that requires grad")
        self.module = module
        self.process_group = get_comm() if process_group is None else process_group
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        broadcast_parameters(module, 0, self.process_group)
        self._buckets = _make_buckets(named[::-1], int(bucket_cap_mb * 1024 * 1024), self.process_group)
        for bucket in self._buckets:
            for slot in bucket.slots:
                slot.param.register_post_accumulate_grad_hook(
                    functools.partial(self._grad_ready, bucket, slot))
        self._sync = True         # False inside no_sync()
        self._armed = False       # the last forward recorded a graph whose backward must reduce
        self._next_launch = 0     # buckets start in index order, the same on every rank
        self._buffer_seconds = 0.0

    @property
    def communication_seconds(self) -> float:
        return self._buffer_seconds + sum(b.reduction.seconds for b in self._buckets)

    @property
    def bucket_sizes(self) -> list:
        """Number of gradient elements in each bucket, in the order they are reduced."""
        return [sum(slot.size for slot in b.slots) for b in self._buckets]

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside the block do not reduce in their backward (local accumulation)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def forward(self, *inputs, **kwargs):
        if self._armed and any(slot.ready for b in self._buckets for slot in b.slots):
            missing = [slot.name for b in self._buckets for slot in b.slots if not slot.ready]
            raise RuntimeError(
                f"DistributedDataParallel: the previous backward() left {len(missing)} "
                f"parameter(s) without a gradient to reduce ({', '.join(missing[:5])}"
                f"{', ...' if len(missing) > 5 else ''}); parameters that take no part in the loss "
                f"need DistributedDataParallel(..., find_unused_parameters=True)")
        self._start_round()
        if self._armed and self.broadcast_buffers:
            self._broadcast_buffers()
        outputs = self.module(*inputs, **kwargs)
        if self._armed and self.find_unused_parameters:
            self._mark_unused(_leaves_reached(outputs))
        return outputs

    # --- one reduction round per synced forward/backward --------------------------------------
    def _start_round(self) -> None:
        for bucket in self._buckets:
            bucket.waiting = len(bucket.slots)
            for slot in bucket.slots:
                slot.ready = slot.used = False
        self._next_launch = 0
        self._armed = self._sync and is_grad_enabled()

    def _broadcast_buffers(self) -> None:
        buffers = list(self.module.buffers())
        if buffers and self.process_group.Get_size() > 1:
            t0 = time.perf_counter()
            broadcast_tensors(buffers, 0, self.process_group)
            self._buffer_seconds += time.perf_counter() - t0

    def _grad_ready(self, bucket: _Bucket, slot: _Slot, param) -> None:
        if not self._armed:
            return
        if slot.ready:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {slot.name!r} got a second gradient in one "
                f"reduction round (backward twice after one forward, or a parameter used outside "
                f"the wrapped forward); accumulate over several backward passes inside no_sync()")
        grad = param.grad
        if grad.shape != slot.shape or grad.dtype != slot.dtype:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {slot.name!r} has a gradient of shape "
                f"{grad.shape} and dtype {grad.dtype}, but was {slot.shape} {slot.dtype} when the "
                f"wrapper was built; wrap the module after casting it")
        bucket.view(slot)[...] = grad
        slot.ready = slot.used = True
        bucket.waiting -= 1
        if bucket.waiting == 0:
            self._launch_full_buckets()

    def _mark_unused(self, reached: set) -> None:
        for bucket in self._buckets:
            for slot in bucket.slots:
                if id(slot.param) not in reached:
                    bucket.view(slot)[...] = 0
                    slot.ready = True
                    bucket.waiting -= 1
        self._launch_full_buckets()

    def _launch_full_buckets(self) -> None:
        buckets = self._buckets
        while self._next_launch < len(buckets) and buckets[self._next_launch].waiting == 0:
            buckets[self._next_launch].reduction.start()
            self._next_launch += 1
        if self._next_launch == len(buckets):
            self._finish_round()

    def _finish_round(self) -> None:
        for bucket in self._buckets:
            bucket.reduction.reduce_own_chunk()
        used_anywhere = None
        if self.find_unused_parameters:
            from .comm import _mpi
            used = np.array([slot.used for b in self._buckets for slot in b.slots], np.int32)
            used_anywhere = np.empty_like(used)
            self.process_group.Allreduce(used, used_anywhere, op=_mpi().MAX)
        index = 0
        for bucket in self._buckets:
            bucket.reduction.finish()
            for slot in bucket.slots:
                param = slot.param
                if slot.used:
                    param.grad[...] = bucket.view(slot)
                elif used_anywhere is not None and used_anywhere[index]:
                    param.grad = bucket.view(slot).copy()
                index += 1
        self._armed = False

    def extra_repr(self) -> str:
        return (f"world_size={self.process_group.Get_size()}, buckets={len(self._buckets)}, "
                f"bucket_sizes={self.bucket_sizes}")

