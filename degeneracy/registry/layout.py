"""The one place that knows where a registry keeps its files."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from degeneracy.schema.kinds import ARRAY_KINDS

DEFAULT_REGISTRY = "degeneracy-registry"
ENV_VAR = "DEGENERACY_REGISTRY"
CATALOG = "catalog.duckdb"
PLACEHOLDER = "empty.parquet"


def _host() -> str:
    return socket.gethostname().replace(".", "-") or "host"


def temp_path(path: Path) -> Path:
    """Where an atomic write of `path` goes first: beside it, hidden, named after this host
    and process, so a later writer can tell a dead process's leftover from a live write."""
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process, or a platform without signal 0
        return True
    return True


def stale_temps(root: Path) -> list[Path]:
    """Temporary files under `root` left by a process of *this host* that is gone (a killed
    write). Others' (another machine on a shared filesystem, or an older naming) are left for
    `check --repair`."""
    host, out = _host(), []
    for p in root.rglob(".*.tmp"):
        parts = p.name[: -len(".tmp")].rsplit(".", 2)
        if len(parts) == 3 and parts[1] == host and parts[2].isdigit():
            pid = int(parts[2])
            if pid != os.getpid() and not _alive(pid):
                out.append(p)
    return sorted(out)


def default_path() -> Path:
    """$DEGENERACY_REGISTRY if set, else ./degeneracy-registry."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_REGISTRY)


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG

    @property
    def data(self) -> Path:
        return self.root / "data"

    def kind_dir(self, kind: str) -> Path:
        return self.data / kind

    def placeholder(self, kind: str) -> Path:
        """A zero-row file with the kind's schema, so views bind before any data exists."""
        return self.kind_dir(kind) / PLACEHOLDER

    def ensemble_file(self, kind: str, task: str, ensemble_id: str) -> Path:
        return self.kind_dir(kind) / f"task={task}" / f"{ensemble_id}.parquet"

    @property
    def pending(self) -> Path:
        """Journal of ensembles written to data/ but not yet registered in the catalog."""
        return self.root / "pending"

    def pending_entry(self, ensemble_id: str) -> Path:
        self.pending.mkdir(exist_ok=True)
        return self.pending / f"{ensemble_id}.json"

    def pending_rows(self, ensemble_id: str) -> Path:
        self.pending.mkdir(exist_ok=True)
        return self.pending / f"{ensemble_id}.networks.parquet"

    def checkpoint(self, ensemble_id: str) -> Path:
        """Where an ensemble in training keeps its resumable state (removed once stored)."""
        return self.root / "checkpoints" / f"{ensemble_id}.pt"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def data_files(self) -> dict[str, list[Path]]:
        return {
            k: sorted(p for p in self.kind_dir(k).glob("**/*.parquet") if p.name != PLACEHOLDER)
            for k in ARRAY_KINDS
        }
