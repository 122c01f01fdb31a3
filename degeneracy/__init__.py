"""degeneracy: measure how different the solutions of task-trained RNN ensembles are.

The Python API (`degeneracy.api`, also reachable as `degeneracy.<name>`): `open`, `ingest`,
`train`, `sweep`, `conditions`, `query`, `label`, `export`, `analyze`, `distances`, `report`,
`check`, plus `Registry`; `distance` and `pairwise` measure a user's own arrays with any
pairwise metric of the table (no registry). Imported lazily, so the CLI starts fast.
"""

__version__ = "0.1.0"

API = (
    "open",
    "ingest",
    "read_networks",
    "train",
    "train_jobs",
    "sweep",
    "conditions",
    "query",
    "label",
    "export",
    "analyze",
    "distances",
    "report",
    "check",
    "reproduce",
    "demo",
)
ARRAYS = ("distance", "pairwise")  # metrics on a user's own arrays (analysis.metrics)
__all__ = ["Registry", "Condition", "NetworkRecord", "__version__", *API, *ARRAYS]


def __getattr__(name: str):
    if name == "Registry":
        from degeneracy.registry.store import Registry

        return Registry
    if name in ("Condition", "NetworkRecord"):
        from degeneracy.registry import records

        return getattr(records, name)
    if name in ARRAYS:
        from degeneracy.analysis import metrics

        return getattr(metrics, name)
    if name in API:
        from degeneracy import api

        return getattr(api, name)
    raise AttributeError(name)
