"""DeepObfuscator training in two processes (torchrun, gloo on CPU): the run folder loads like a one-process run's,
every step's DDP modules finish their backward, and the processes' parameters stay identical."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_obfuscate_data import write_dataset

from advpriv.obfuscate.checkpoint import CHECKPOINT, OBFUSCATOR, UTILITY_ONLY, load_checkpoint, load_run
from advpriv.obfuscate.config import TrainConfig
from advpriv.obfuscate.data import load_attributes
from advpriv.obfuscate.distributed import Distributed, DistributedError
from advpriv.obfuscate.train import Parties, train

# the private preset (bottleneck, pooling, learned noise) with every stage, and 5 minibatches per process and epoch,
# so the adversarial epoch runs all five rotation steps
TINY = dict(width=1 / 16, fc=16, pretrain_epochs=1, attacker_epochs=1, epochs=1, batch_size=4)
OPTIONS = ["--preset", "private", "--width", "0.0625", "--fc", "16", "--pretrain-epochs", "1", "--attacker-epochs",
           "1", "--epochs", "1", "--batch-size", "4", "--image-size", "native", "--threads", "1"]


def test_two_processes_write_a_run_that_loads_like_one_process(tmp_path):
    root = write_dataset(tmp_path / "faces", n=24)
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "advpriv", "obfuscator", "train", str(root), "-o", str(out), *OPTIONS]
    done = subprocess.run(command, capture_output=True, text=True, timeout=150,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("done:") == 1  # the first process alone reports

    run = load_run(out)
    cfg = run.config
    assert cfg.batch_size == 4 and cfg.vib > 0 and cfg.epochs == 1
    single = train(load_attributes(root), cfg, tmp_path / "single", ctx=Distributed())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single.iterdir())
    for name in (UTILITY_ONLY, OBFUSCATOR):
        assert (out / name).stat().st_size == (single / name).stat().st_size
    before, after = (run.encoder(name) for name in ("utility_only", "obfuscator"))
    assert after(torch.rand(2, 3, *cfg.image_size)).shape[1:] == run.feature_shape
    assert not torch.equal(before.bottleneck.log_std, after.bottleneck.log_std)  # the adversarial epoch trained E
    parties = Parties(cfg)
    assert load_checkpoint(out / CHECKPOINT, parties.nets, parties.opts) == (3, 1)
    assert all(torch.equal(a, b) for a, b in zip(parties.E.parameters(), after.parameters()))


def test_minibatches_split_over_processes():
    order = torch.arange(10, 29)  # 19 training images, as above
    ranks = [Distributed(rank=r, world=2).shard(order, 4) for r in range(2)]
    assert [len(b) for b in ranks[0]] == [len(b) for b in ranks[1]] == [2] * 5
    assert [set(torch.cat([r[b] for r in ranks]).tolist()) for b in range(4)] == \
           [set(b.tolist()) for b in order.split(4)[:4]]
    with pytest.raises(DistributedError, match="multiple of 2"):
        Distributed(world=2).per_process_batch(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drift(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = Distributed(rank=rank, world=2)
    with ctx.joined():
        parties = Parties(TrainConfig(**TINY, image_size=(36, 32)), ctx)  # DDP makes rank 0's start everyone's
        ctx.check_in_sync(parties.nets)
        with torch.no_grad():
            next(parties.C.parameters()).add_(rank)
        try:
            ctx.check_in_sync(parties.nets)
            results[rank] = "in sync"
        except DistributedError as e:
            results[rank] = str(e)


def test_drift_between_processes_is_caught():
    results = mp.Manager().dict()
    mp.spawn(_drift, args=(_free_port(), results), nprocs=2)
    assert all("drifted apart" in results[r] for r in range(2))
    assert not dist.is_initialized()
