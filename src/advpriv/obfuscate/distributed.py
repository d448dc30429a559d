"""Training across processes: `torchrun --nproc-per-node N -m advpriv obfuscator train ...` runs DistributedDataParallel.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (a plain run) everything here is a no-op for one
process. The backend is nccl when CUDA is available (one GPU per process, `cuda:LOCAL_RANK`) and gloo on CPU.

The batch size is global: each of the N processes takes `batch_size / N` images of every minibatch, the same
minibatches as one process would take (up to the padding of the last one), and DDP averages the gradients.
Batch-norm statistics are computed per process.

Example:
    >>> ctx = Distributed.from_env({})          # not under torchrun: one process, on the CPU or GPU 0
    >>> ctx.world, ctx.rank, ctx.is_main
    (1, 0, True)
    >>> ctx.shard(torch.arange(5), batch_size=2)
    [tensor([0, 1]), tensor([2, 3]), tensor([4])]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler


class DistributedError(ValueError):
    """A distributed run is set up in a way that cannot work; the message says what to change."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: its rank among `world` processes and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Distributed:
        """Read torchrun's variables (from `os.environ` by default); does not start the process group."""
        env = os.environ if env is None else env
        local = int(env.get("LOCAL_RANK", 0))
        device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), device)

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, weights and progress (rank 0)."""
        return self.rank == 0

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Inside, this process is in the process group (gloo on CPU, nccl on GPU), left at the end; nothing for one
        process, or when the caller already started the group."""
        if self.world == 1 or dist.is_initialized():
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", rank=self.rank, world_size=self.world)
        try:
            yield
        finally:
            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait for every process (for one process, return at once)."""
        if self.world > 1:
            dist.barrier()

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` in DistributedDataParallel (gradients averaged over the processes); itself for one process."""
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def per_process_batch(self, batch_size: int) -> int:
        """This process's share of a global minibatch of `batch_size`."""
        if batch_size % self.world:
            raise DistributedError(f"the batch size {batch_size} does not split over {self.world} processes; "
                                   f"use a multiple of {self.world} (--batch-size) or another --nproc-per-node.")
        return batch_size // self.world

    def shard(self, order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
        """This process's minibatches of an epoch's `order` of indices: every process gets the same number, and
        together the processes' b-th minibatches hold the b-th global minibatch of `batch_size`."""
        positions = list(DistributedSampler(range(len(order)), num_replicas=self.world, rank=self.rank, shuffle=False))
        return list(order[positions].split(self.per_process_batch(batch_size)))

    def check_in_sync(self, modules: dict[str, nn.Module]) -> None:
        """Raise if any process's parameters differ from the others' (they must stay identical under DDP)."""
        if self.world == 1:
            return
        sums = torch.stack([p.detach().double().sum() for m in modules.values() for p in m.parameters()])
        low, high = sums.clone(), sums.clone()
        dist.all_reduce(low, dist.ReduceOp.MIN)
        dist.all_reduce(high, dist.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise DistributedError("the processes' parameters drifted apart; this is a bug in advpriv's distributed "
                                   "training: please report it with the command you ran.")

    def seed_own_draws(self) -> None:
        """After the draws every process must share (an epoch's order), give each its own dropout and noise."""
        if self.world > 1:
            torch.manual_seed(int(torch.randint(2**62, ())) + self.rank)
