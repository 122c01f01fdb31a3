"""The one place that knows where a registry keeps its files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from degeneracy.schema.kinds import ARRAY_KINDS

DEFAULT_REGISTRY = "degeneracy-registry"
ENV_VAR = "DEGENERACY_REGISTRY"
CATALOG = "catalog.duckdb"
PLACEHOLDER = "empty.parquet"


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

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def data_files(self) -> dict[str, list[Path]]:
        return {
            k: sorted(p for p in self.kind_dir(k).glob("**/*.parquet") if p.name != PLACEHOLDER)
            for k in ARRAY_KINDS
        }
