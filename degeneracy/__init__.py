"""degeneracy: measure how different the solutions of task-trained RNN ensembles are.

`Registry` (imported lazily, so the CLI starts fast) is the entry point of the Python API.
"""

__version__ = "0.1.0"

__all__ = ["Registry", "Condition", "NetworkRecord", "__version__"]


def __getattr__(name: str):
    if name == "Registry":
        from degeneracy.registry.store import Registry

        return Registry
    if name in ("Condition", "NetworkRecord"):
        from degeneracy.registry import records

        return getattr(records, name)
    raise AttributeError(name)
