"""The on-disk store: Parquet writers, the DuckDB catalog, ingest, ids, locking.

Names are imported lazily so that light commands (ls, info, query) start fast.
"""

__all__ = ["Condition", "NetworkRecord", "Registry", "RegistryError", "WriteSummary"]


def __getattr__(name: str):
    if name == "RegistryError":
        from degeneracy.registry.errors import RegistryError

        return RegistryError
    if name in ("Condition", "NetworkRecord"):
        from degeneracy.registry import records

        return getattr(records, name)
    if name == "Registry":
        from degeneracy.registry.store import Registry

        return Registry
    if name == "WriteSummary":
        from degeneracy.registry.writer import WriteSummary

        return WriteSummary
    raise AttributeError(name)
