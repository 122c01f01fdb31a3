"""Which networks form a group: the condition columns plus every setting that differs.

A registry may hold one condition trained at two thresholds, learning rates or budgets; those
settings live in the `factors` JSON, so grouping by the typed condition columns alone would pool
them. Every grouping here adds the `factors` entries that differ within a group as keys
("train.threshold", "task_params.delay_max", ...), so no group mixes settings.
"""

from __future__ import annotations

import json
import re

from degeneracy.registry.errors import RegistryError

DEFAULT_GROUP_BY = ["task", "complexity", "hidden_size", "regime", "gamma", "l1", "nuclear"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: a group key may also name a `factors` entry by its path ("task_params.delay_max")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, path + "."))
        else:
            out[path] = json.dumps(v, sort_keys=True)
    return out


def conditions(where: str | None, converged_only: bool) -> str:
    conds = (["converged"] if converged_only else []) + ([f"({where})"] if where else [])
    return f"WHERE {' AND '.join(conds)}" if conds else ""


def split_settings(
    registry, group_by: list[str], where: str | None, converged_only: bool = True
) -> list[str]:
    """The `factors` entries (task parameters, training settings: "train.threshold", ...) that
    differ within some group of `group_by`. Groups are split by them, never silently pooled."""
    cols = [column_sql(c) for c in group_by]
    with registry.read_query(
        f"SELECT {', '.join(cols) or '1'}, list(DISTINCT factors) FROM networks_labeled "
        f"{conditions(where, converged_only)} GROUP BY ALL"
    ) as rel:
        found = rel.fetchall()
    keys: set[str] = set()
    for row in found:
        flat = [_flatten(json.loads(f)) for f in row[-1]]
        every = set().union(*flat)
        keys |= {k for k in every if len({f.get(k) for f in flat}) > 1}
    return sorted(keys)


def setting_labels(rows: list[dict], keys: list[str]) -> list[str]:
    """One label per row naming its setting ("train.threshold=0.01"), from the `keys` whose
    values differ among `rows`; "all" where none do. Charts, the contravariance table and the
    DSA grid label groups with this, so their settings match."""
    varying = [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]
    return [", ".join(f"{k}={r[k]}" for k in varying) or "all" for r in rows]


def column_sql(name: str, alias: bool = True) -> str:
    """A group key as SQL: a column name as is, a `factors` path ("task_params.delay_max") as
    the JSON lookup `setting_sql` builds (named after the path unless `alias` is false);
    anything else is refused."""
    if _IDENT.match(name):
        return name
    if _PATH.match(name):
        return setting_sql(name) if alias else _lookup(name)
    raise RegistryError(
        f"--group-by takes column names or factors paths (task_params.delay_max), got {name!r}"
    )


def setting_value(text: str | None):
    """A `factors` entry read back as text (->>) to its JSON value where it is one: '40' -> 40,
    'true' -> True; other text (an unquoted string) as is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _lookup(path: str) -> str:
    """factors->'a'->>'b' for path "a.b": the entry as text."""
    quoted = ["'" + p.replace("'", "''") + "'" for p in path.split(".")]
    return "factors" + "".join(f"->{q}" for q in quoted[:-1]) + f"->>{quoted[-1]}"


def setting_sql(path: str) -> str:
    alias = path.replace('"', '""')
    return f'{_lookup(path)} AS "{alias}"'
