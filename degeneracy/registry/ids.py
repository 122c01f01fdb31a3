"""Stable identifiers: hashes of canonical JSON, so equal conditions give equal ids everywhere."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; NaN and infinity are refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(obj: Any, prefix: str, length: int = 16) -> str:
    return prefix + hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def network_id(condition: dict[str, Any], seed: int) -> str:
    """A network is its full condition plus its seed: the same network written twice is one row."""
    return digest({"condition": condition, "seed": int(seed)}, "n")


def ensemble_id(condition: dict[str, Any], seeds: list[int]) -> str:
    """One ensemble per (condition, set of seeds written together)."""
    return digest({"condition": condition, "seeds": sorted(int(s) for s in seeds)}, "e")


def params_hash(params: dict[str, Any]) -> str:
    """Cache key of a metric's parameters."""
    return digest(params, "p", 12)
