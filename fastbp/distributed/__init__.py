"""Data-parallel training and work spread over processes with MPI (mpi4py), possibly on many
machines: `pip install "fastbp[mpi]"`, then `mpiexec -n N python train.py`.

    import fastbp.distributed as dist
    dist.init()                                    # threads per rank, abort-on-error
    model = dist.DistributedDataParallel(make_model())
    sampler = dist.DistributedSampler(len(x_train), shuffle=True, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        idx = sampler.indices()                    # this rank's share of the epoch
        ...loss.backward()...                      # gradients arrive averaged over the ranks
        opt.step()
    mean_loss = dist.all_reduce(loss_sum) / dist.all_reduce(count)
    dist.save_checkpoint(model.module.state_dict(), "model.npz")   # rank 0 writes

Importing this module needs no MPI; the first call that does imports mpi4py and says what to
install when it is missing.
"""
from .comm import (all_gather_object, all_reduce, barrier, broadcast_object,
                   broadcast_parameters, find_mpiexec, gather_object, get_comm, init, is_available,
                   is_initialized, load_checkpoint, local_rank, local_world_size, rank,
                   save_checkpoint, world_size)
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler

__all__ = ["init", "is_available", "is_initialized", "get_comm", "rank", "world_size",
           "local_rank", "local_world_size", "barrier", "find_mpiexec", "all_reduce",
           "all_gather_object", "gather_object", "broadcast_object", "broadcast_parameters",
           "save_checkpoint", "load_checkpoint", "DistributedDataParallel", "DistributedSampler"]
