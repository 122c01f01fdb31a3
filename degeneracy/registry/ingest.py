"""Ingest of networks trained elsewhere: exchange folders and state_dict files.

Everything named is read and checked first; only then is anything written, so one bad file
leaves the registry exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.exchange import MANIFEST, read_exchange
from degeneracy.registry.ids import canonical_json
from degeneracy.registry.records import Condition, NetworkRecord
from degeneracy.registry.statedict import SUFFIXES, read_state_dict_network
from degeneracy.registry.store import Registry
from degeneracy.registry.validate import validate_records
from degeneracy.registry.writer import WriteSummary

Batch = tuple[Condition, list[NetworkRecord], str]


def collect(paths: list[Path]) -> list[Batch]:
    """Read every input into (condition, networks, source) batches, one per condition."""
    exchange: list[Batch] = []
    state_dicts: list[Path] = []
    for path in paths:
        if path.is_dir() and (path / MANIFEST).exists():
            condition, records = read_exchange(path)
            exchange.append((condition, records, f"exchange:{path.name}"))
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
            if not found:
                raise RegistryError(f"{path}: no {MANIFEST} and no state_dict files (*.pt, *.pth)")
            state_dicts.extend(found)
        elif path.is_file() and path.suffix in SUFFIXES:
            state_dicts.append(path)
        elif path.exists():
            raise RegistryError(f"{path}: expected an exchange folder or a .pt/.pth state_dict")
        else:
            raise RegistryError(f"{path}: no such file or folder")
    grouped: dict[str, Batch] = {}
    for path in state_dicts:
        condition, record = read_state_dict_network(path)
        key = canonical_json(condition.to_dict())
        grouped.setdefault(key, (condition, [], "state_dict"))[1].append(record)
    batches = exchange + list(grouped.values())
    for condition, records, source in batches:
        validate_records(condition, records, source)
    return batches


def write_batches(registry: Registry, batches: list[Batch]) -> list[WriteSummary]:
    """Write each collected batch as one ensemble (idempotent: stored networks are skipped)."""
    return [registry.write_ensemble(c, r, source=s) for c, r, s in batches]
