"""`advpriv protect`'s per-file pipeline on Ray Data: many files, many processes, one machine or a cluster.

The plan is `advpriv protect`'s (`advpriv.protect.batch.plan_batch`): the inputs, less those whose protected output
already exists and verifies (unless forced), and every output's name. Ray Data reads the inputs as binary files; a pool of actors, each
loading the models once, protects, writes (atomically) and records one file per call in the folder's metrics table
(under its lock), so a batch killed by a scheduler, or whose driver dies, keeps the record of every file written
and resumes where it stopped. A file's result depends only on the file, the seed and the actor's torch
thread count, so it is the same as `advpriv protect`'s on as many threads.

On a cluster, every node must see the inputs and the output folder at the same paths (a shared file system).

Example:
    >>> import ray; ray.init(num_cpus=2)                                            # doctest: +SKIP
    >>> from advpriv.protect.batch import plan_batch                              # doctest: +SKIP
    >>> plan = plan_batch(["photos/"], "protected/")                               # doctest: +SKIP
    >>> reports = protect_on_ray(plan, "protected/", ProtectJob(target="efficientnet-lite0"))  # doctest: +SKIP
    >>> plan.done, [r.error for r in reports]                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import ray
import torch

from advpriv.images import MAX_PIXELS
from advpriv.protect.batch import Plan, merge_metrics, protect_into
from advpriv.protect.files import FileReport
from advpriv.protect.job import ProtectJob

THREADS = 1
"""Torch threads per actor: one actor per core scales best, and a file's bytes depend on the thread count."""


class _Protect:
    """A Ray actor: loads the models once, then claims the output's name, protects, writes, records in `outdir`'s
    metrics table and reports one file per row (`advpriv.protect.batch.protect_into`). `own`: the outputs replaced
    in place (`Plan.own`)."""

    def __init__(self, job: ProtectJob, outdir: str, outputs: dict[str, str], own: set[str], fmt: str,
                 max_pixels: int, seed: int, threads: int) -> None:
        torch.set_num_threads(threads)
        self.protector = job.protector()
        self.outdir, self.outputs, self.own = outdir, outputs, own
        self.fmt, self.max_pixels, self.seed = fmt, max_pixels, seed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        reports = []
        for path, data in zip(batch["path"], batch["bytes"]):
            reports.append(protect_into(bytes(data), path, Path(self.outputs[path]), self.protector, self.fmt,
                                        self.max_pixels, self.seed, self.outputs[path] in self.own))
            merge_metrics(reports[-1:], self.outdir)
        return {"report": np.array([json.dumps(asdict(r)) for r in reports], dtype=object)}


def connect(address: str = "local") -> None:
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to), or start one on this machine
    ("local"); nothing when Ray is already initialised."""
    if ray.is_initialized():
        return
    ray.init(address=None if address == "local" else address, include_dashboard=False, logging_level="WARNING")


def protect_on_ray(plan: Plan, outdir: str | os.PathLike, job: ProtectJob, fmt: str = "png",
                   max_pixels: int = MAX_PIXELS, seed: int = 0, actors: int | None = None,
                   threads: int = THREADS) -> list[FileReport]:
    """Protect the inputs of `plan` (see `advpriv.protect.batch.plan_batch`) into `outdir` on the connected Ray
    cluster, each file recorded in the folder's metrics table as soon as it is written; return the reports, in input
    order.

    actors: how many model-holding actors (default: the cluster's CPUs // threads); threads: torch threads each.
    """
    outputs = {str(p.resolve()): str(out) for p, out in plan.outputs.items()}
    todo = list(outputs)
    if not todo:
        return []
    Path(outdir).mkdir(parents=True, exist_ok=True)
    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    rows = (ray.data.read_binary_files(todo, include_paths=True, num_cpus=0)  # I/O: must not wait for actors' CPUs
            .map_batches(_Protect, batch_size=1, batch_format="numpy", num_cpus=threads,
                         compute=ray.data.ActorPoolStrategy(size=min(actors, len(todo))),
                         fn_constructor_kwargs=dict(job=job, outdir=str(outdir), outputs=outputs, own=set(map(str, plan.own)), fmt=fmt,
                                                    max_pixels=max_pixels, seed=seed, threads=threads)))
    order = {p: i for i, p in enumerate(todo)}
    return sorted((FileReport(**json.loads(row["report"])) for row in rows.iter_rows()), key=lambda r: order[r.input])
