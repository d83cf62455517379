"""The process group: loading mpi4py, ranks, threads per rank, and the collectives that move
numpy arrays and Python objects between ranks (floating-point sums in rank order)."""
from __future__ import annotations

import os
import shutil
import sys
from collections import OrderedDict
from typing import Any

import numpy as np

from ..runtime import set_num_threads
from ..serialization import load, save
from .reduction import RankOrderSum, padded_size

__all__ = ["is_available", "init", "is_initialized", "get_comm", "rank", "world_size",
           "local_rank", "local_world_size", "barrier", "find_mpiexec", "all_reduce",
           "all_gather_object", "gather_object", "broadcast_object", "broadcast_parameters",
           "save_checkpoint", "load_checkpoint"]

INSTALL_HINT = ('install the MPI extra, `pip install "fastbp[mpi]"` (mpi4py and the MPICH wheel), '
                'or on a cluster `pip install mpi4py` to use the cluster\'s own MPI')

# Variables that launchers set to the number of processes they started (MPICH/Intel MPI's hydra,
# Open MPI, MVAPICH): more than 1 there but a world of 1 here means a launcher of another MPI.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class _Group:
    comm: Any = None       # the communicator every helper uses (MPI.COMM_WORLD by default)
    node: Any = None       # the ranks of comm on this machine (shared memory)


_group = _Group()


def is_available() -> bool:
    """Whether mpi4py can be imported (without initialising MPI)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def _mpi():
    """mpi4py's MPI module (importing it initialises MPI), or an ImportError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"fastbp.distributed needs mpi4py, which is not installed: "
                          f"{INSTALL_HINT} ({error})") from None
    except RuntimeError as error:  # mpi4py is there but finds no MPI library to load
        raise ImportError(f"mpi4py found no MPI library ({' '.join(str(error).split())}): "
                          f"{INSTALL_HINT}") from None
    return MPI


def find_mpiexec() -> str:
    """Path of an mpiexec: the one beside this Python (where pip puts the MPICH wheel's, matching
    the library mpi4py loads), else the first mpiexec or mpirun on PATH. RuntimeError if none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise RuntimeError(f"no MPI launcher (mpiexec) beside {sys.executable} or on PATH: "
                           f"{INSTALL_HINT}")
    return found


def init(comm=None, *, num_threads: int | None = None) -> None:
    """Join the process group: `comm` (an mpi4py communicator, default MPI.COMM_WORLD).

    Threads: `num_threads` sets fastbp's threads on this rank; without it, OMP_NUM_THREADS is
    obeyed when set, else the CPUs this rank may run on are split evenly between the ranks of
    this machine that share them (2 ranks on 2 cores: 1 thread each), so ranks don't oversubscribe.
    An uncaught exception on any rank aborts all ranks (instead of leaving them waiting in a
    collective). Called again, init() only applies num_threads; the other functions of
    fastbp.distributed call init() when it has not been called.
    """
    if _group.comm is not None:
        if comm is not None and comm != _group.comm:
            raise RuntimeError("fastbp.distributed is already initialised with another communicator")
        if num_threads is not None:
            set_num_threads(num_threads)
        return
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    if comm == MPI.COMM_WORLD and comm.Get_size() == 1:
        _check_launcher(MPI)
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    if num_threads is not None:
        set_num_threads(num_threads)
    elif "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        mine = os.sched_getaffinity(0)
        sharing = sum(1 for cpus in node.allgather(sorted(mine)) if mine & set(cpus))
        if sharing > 1:
            set_num_threads(max(1, len(mine) // sharing))
    if comm.Get_size() > 1:
        sys.excepthook = _abort_after(sys.excepthook, comm)
    _group.comm, _group.node = comm, node


def _check_launcher(MPI) -> None:
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            library = MPI.Get_library_version().strip().splitlines()[0]
            raise RuntimeError(
                f"a launcher started {value} processes ({name}={value}), but each one is alone in "
                f"its MPI world: that launcher belongs to another MPI than the library mpi4py "
                f"loaded ({library}). Start the program with the mpiexec of that library "
                f"(for the MPICH wheel: {os.path.join(os.path.dirname(sys.executable), 'mpiexec')}), "
                f"or point mpi4py at the launcher's library with MPI4PY_LIBMPI=/path/to/libmpi.so")


def _abort_after(previous, comm):
    def excepthook(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.flush()
        comm.Abort(1)

    return excepthook


def is_initialized() -> bool:
    return _group.comm is not None


def get_comm():
    """The mpi4py communicator of the process group (initialising it with defaults if needed)."""
    init()
    return _group.comm


def rank() -> int:
    return get_comm().Get_rank()


def world_size() -> int:
    return get_comm().Get_size()


def local_rank() -> int:
    """This rank's number among the ranks on the same machine."""
    init()
    return _group.node.Get_rank()


def local_world_size() -> int:
    """How many ranks run on this machine."""
    init()
    return _group.node.Get_size()


def barrier() -> None:
    get_comm().Barrier()


_OPS = ("sum", "mean", "max", "min")


def all_reduce(value, op: str = "sum"):
    """`value` (a number or an array of the same shape on every rank) reduced over the ranks:
    op 'sum', 'mean', 'max' or 'min'. Returns a new array, or a Python number for a number.
    Floating-point sums are added in rank order, so the result is the same bits run to run.
    For a metric averaged over samples, reduce the sum and the count: all_reduce([s, n])."""
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(map(repr, _OPS))}, got {op!r}")
    scalar = np.ndim(value) == 0 and not isinstance(value, np.ndarray)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"all_reduce: value must be numeric, got dtype {array.dtype}")
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    comm = get_comm()
    size = comm.Get_size()
    if op in ("max", "min"):
        MPI = _mpi()
        result = np.empty_like(array)
        comm.Allreduce(np.ascontiguousarray(array), result, op=MPI.MAX if op == "max" else MPI.MIN)
    else:
        flat = np.zeros(padded_size(array.size, size), array.dtype)
        flat[:array.size] = array.ravel()
        summed = RankOrderSum(comm, flat, average=False).run()[:array.size].reshape(array.shape)
        result = summed / size if op == "mean" else summed
    return result.item() if scalar else result


def all_gather_object(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (pickled: for small Python objects)."""
    return get_comm().allgather(obj)


def gather_object(obj, root: int = 0) -> list | None:
    """[obj of rank 0, obj of rank 1, ...] on rank `root`, None on the others."""
    return get_comm().gather(obj, root=_check_root(root))


def broadcast_object(obj, root: int = 0):
    """Rank `root`'s obj on every rank (pickled)."""
    return get_comm().bcast(obj, root=_check_root(root))


def _check_root(root: int, comm=None) -> int:
    size = (get_comm() if comm is None else comm).Get_size()
    if not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"root must be a rank between 0 and {size - 1}, got {root!r}")
    return int(root)


def broadcast_parameters(module, root: int = 0, comm=None) -> None:
    """Copy rank `root`'s parameters and buffers (all of them, persistent or not) into `module`
    on every rank, in place: one message per dtype. Every rank must pass the same architecture;
    a mismatch raises RuntimeError on all ranks, naming the first differing entry."""
    from ..nn import Module
    if not isinstance(module, Module):
        raise TypeError(f"broadcast_parameters: module must be a fastbp.nn.Module, got "
                        f"{type(module).__name__}")
    comm = get_comm() if comm is None else comm
    root = _check_root(root, comm)
    entries = list(module.named_parameters()) + list(module.named_buffers())
    check_same_layout(comm, [(name, t.shape, str(t.dtype)) for name, t in entries],
                      "broadcast_parameters: the modules")
    broadcast_tensors([t for _, t in entries], root, comm)


def broadcast_tensors(tensors: list, root: int, comm) -> None:
    """Rank root's values of `tensors` (fastbp Tensors, the same shapes on every rank) copied
    into them on every rank, in place: one message per dtype."""
    if comm.Get_size() == 1:
        return
    by_dtype: dict = OrderedDict()
    for tensor in tensors:
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for group in by_dtype.values():
        flat = np.concatenate([t.data.ravel() for t in group])
        comm.Bcast(flat, root=root)
        offset = 0
        for t in group:
            t.data[...] = flat[offset:offset + t.data.size].reshape(t.shape)
            offset += t.data.size


def check_same_layout(comm, layout: list, what: str) -> None:
    """RuntimeError on every rank when `layout` (a list of (name, shape, dtype)) differs between ranks."""
    layouts = comm.allgather(layout)
    for other_rank, other in enumerate(layouts):
        if other == layouts[0]:
            continue
        first = next((i for i, (a, b) in enumerate(zip(layouts[0], other)) if a != b),
                     min(len(layouts[0]), len(other)))
        entry = lambda items: items[first] if first < len(items) else "nothing"  # noqa: E731
        raise RuntimeError(f"{what} differ between ranks: entry {first} is {entry(layouts[0])} on "
                           f"rank 0 but {entry(other)} on rank {other_rank} ({len(layouts[0])} and "
                           f"{len(other)} entries)")


def save_checkpoint(state_dict, path, root: int = 0) -> None:
    """fastbp.save(state_dict, path) on rank `root` only; every rank returns once the file is
    written. If writing fails, rank `root` raises the error and the others a RuntimeError."""
    root = _check_root(root)
    comm = get_comm()
    error = None
    if comm.Get_rank() == root:
        try:
            save(state_dict, path)
        except Exception as e:
            error = e
    message = comm.bcast(None if error is None else f"{type(error).__name__}: {error}", root=root)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"save_checkpoint: rank {root} could not write {path}: {message}")


def load_checkpoint(path, root: int = 0) -> OrderedDict:
    """fastbp.load(path) on rank `root`, sent to every rank (so the file need only exist there).
    If reading fails, rank `root` raises the error and the others a RuntimeError."""
    root = _check_root(root)
    comm = get_comm()
    state, error = None, None
    if comm.Get_rank() == root:
        try:
            state = load(path)
        except Exception as e:
            error = e
    state, message = comm.bcast((state, None if error is None else f"{type(error).__name__}: {error}"),
                                root=root)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"load_checkpoint: rank {root} could not read {path}: {message}")
    return state
