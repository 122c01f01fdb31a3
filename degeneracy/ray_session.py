"""What the Ray executors share (training ensembles, pairwise distances): the import with its one
clear error, the executor names, starting Ray, and collecting tasks as they finish.

Ray is an optional extra: `pip install 'degeneracy[ray]'`. Nothing here imports it at module
level, so `degeneracy` imports (and its local executors run) without it.
"""

from __future__ import annotations

from collections.abc import Generator, Hashable
from contextlib import contextmanager
from typing import Any, TypeVar

from degeneracy.registry.errors import RegistryError

EXECUTORS = ("local", "ray")


def check_executor(executor: str) -> None:
    if executor not in EXECUTORS:
        raise RegistryError(f"executor must be 'local' or 'ray', got {executor!r}")


def require_ray():
    try:
        import ray
    except ImportError:
        raise RegistryError(
            "the Ray executor needs Ray: pip install 'degeneracy[ray]' (or use the local "
            "executor, the default)"
        ) from None
    return ray


def start(address: str | None = None, cpus: int | None = None) -> bool:
    """Initialize Ray unless it already is: the cluster at `address`, else a local instance on
    `cpus` of this machine's cores (default all). Returns whether this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    ray.init(
        address=address,
        num_cpus=None if address else cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    return True


@contextmanager
def session(address: str | None = None, cpus: int | None = None):
    """Ray, initialized (see `start`) for the block; stopped at its end if the block started it
    (a cluster is only disconnected from, never stopped)."""
    ray = require_ray()
    started = start(address, cpus)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


K = TypeVar("K", bound=Hashable)


def as_completed(ray, refs: dict[Any, K]) -> Generator[tuple[K, Any], None, None]:
    """(key, result) for each task of `refs` (object ref -> key), in the order they finish.
    Leaving early (an error, Ctrl-C, the consumer stopping) cancels the tasks still running."""
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
