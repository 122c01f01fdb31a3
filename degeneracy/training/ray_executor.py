"""Training ensembles as Ray tasks: on this machine, or on a Ray cluster (`address`).

Each ensemble is one task asking for `threads` CPUs (torch runs exactly that many threads in
it) or, for CUDA conditions, one GPU. Tasks only compute and checkpoint (`training.checkpoint`,
into the registry's `checkpoints/` folder, which must be on a filesystem every node sees): the
calling process registers each ensemble as it comes back, so the catalog keeps one writer. A
task whose worker dies is retried by Ray (`RETRIES`) and resumes from its checkpoint. Leaving
the loop early (an error, Ctrl-C) cancels the tasks still running; a rerun resumes them.

Ray is an optional extra: `pip install 'degeneracy[ray]'`.
"""

from __future__ import annotations

from collections.abc import Iterator

from degeneracy.ray_session import as_completed, session
from degeneracy.training.checkpoint import Checkpointing
from degeneracy.training.trainer import Experiment, NetworkRecord, train_ensemble

RETRIES = 3  # a task whose worker process dies (OOM, a lost node) runs again, from its checkpoint


def _train_task(
    exp: Experiment, seeds: list[int], device: str, threads: int, cp: Checkpointing | None
) -> list[NetworkRecord]:
    import torch

    torch.set_num_threads(threads)
    return train_ensemble(exp, seeds, device=device, checkpoint=cp)


def train_many_ray(
    work: list[tuple[Experiment, list[int]]],
    threads: int,
    device: str = "cpu",
    checkpoints: list[Checkpointing | None] | None = None,
    address: str | None = None,
    cpus: int | None = None,
) -> Iterator[tuple[int, list[NetworkRecord]]]:
    """(index into `work`, records) for each ensemble, in the order they finish.

    Without `address` a local Ray instance starts on this machine (`cpus` of its cores, default
    all) and stops at the end; with one, the cluster there is used and left running."""
    gpu = 1 if device.startswith("cuda") else 0
    with session(address, cpus) as ray:
        task = ray.remote(_train_task).options(num_cpus=threads, num_gpus=gpu, max_retries=RETRIES)
        refs = {
            task.remote(exp, seeds, device, threads, checkpoints[i] if checkpoints else None): i
            for i, (exp, seeds) in enumerate(work)
        }
        # an error or Ctrl-C cancels what still runs (a rerun resumes it)
        yield from as_completed(ray, refs)
