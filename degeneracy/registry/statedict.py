"""Ingest of PyTorch `state_dict` files plus a JSON or TOML sidecar giving task and condition.

    net3.pt     torch.save(model.state_dict(), "net3.pt")
    net3.toml   task = "flipflop"          # required
                seed = 3                   # required
                complexity = 2             # optional condition fields: hidden_size (checked
                regime = "standard"        #   against W_h), regime, gamma, l1, nuclear
                final_loss = 4e-4          # optional: steps, final_loss, ood_loss, converged
                init = "net3_init.pt"      # optional: the state_dict before training
                update = "rnn"             # optional: torch.nn.RNN's tanh update (default),
                                           #   or "leaky" (this project's network, [factors] tau)
                [factors]                  # optional: anything else about the condition
                lr = 1e-3
                [names]                    # optional: our parameter name -> key in the file
                W_h = "cell.recurrent.weight"

Files are loaded with `torch.load(weights_only=True)`: tensors only, no code runs.
Keys of `torch.nn.RNN` (`weight_hh_l0`, `weight_ih_l0`, `bias_ih_l0` + `bias_hh_l0`) and a
readout `*.weight`/`*.bias` named fc, readout, linear, out, output or decoder are recognised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from degeneracy.registry.errors import RegistryError
from degeneracy.registry.records import CONDITION_FIELDS, Condition, NetworkRecord
from degeneracy.registry.validate import check_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUFFIXES = (".pt", ".pth")
_SUMMARY = ("steps", "final_loss", "ood_loss", "converged", "train_loss")
_READOUTS = ("fc", "readout", "linear", "out", "output", "decoder")


def sidecar_for(path: Path) -> Path:
    for suffix in (".json", ".toml"):
        candidate = path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    raise RegistryError(
        f"{path}: no sidecar {path.with_suffix('.json').name} or "
        f"{path.with_suffix('.toml').name} giving task and seed"
    )


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot parse ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a table of settings")
    known = {*CONDITION_FIELDS, "factors", "seed", "init", "names", "update", *_SUMMARY}
    check_keys(str(path), data, known, ("task", "seed"))
    return data


def _typed(side: dict[str, Any], side_path: Path) -> dict[str, Any]:
    """The sidecar's seed and summaries, strictly typed (a boolean is a boolean, a number a
    number): "no" must not become converged = true, nor "low" a traceback."""

    def bad(key: str, what: str) -> RegistryError:
        return RegistryError(f"{side_path}: {key} must be {what}, got {side.get(key)!r}")

    seed = side["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise bad("seed", "an integer >= 0")
    out: dict[str, Any] = {"seed": seed}
    for key in ("final_loss", "ood_loss", "train_loss"):
        v = side.get(key)
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf")
        ):
            raise bad(key, "a finite number >= 0")
        out[key] = None if v is None else float(v)
    steps = side.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise bad("steps", "an integer >= 0")
    out["steps"] = steps
    converged = side.get("converged")
    if converged is not None and not isinstance(converged, bool):
        raise bad("converged", "true or false")
    out["converged"] = converged
    factors = side.get("factors")
    train = factors.get("train") if isinstance(factors, dict) else None
    threshold = train.get("threshold") if isinstance(train, dict) else None
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0
    ):
        raise RegistryError(
            f"{side_path}: [factors.train] threshold must be a number > 0, got {threshold!r}"
        )
    return out


def _check_finite(tensors: dict[str, np.ndarray], path: Path) -> None:
    """Weights are stored as float32: a value that is not finite there (1e300 is finite in
    float64) is refused, not stored as ±inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        for key, value in tensors.items():
            if not np.isfinite(value.astype(np.float32)).all():
                raise RegistryError(f"{path}: {key} has NaN or infinite values (as float32)")


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a state_dict file as float arrays (weights_only: no pickled code runs)."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # a refused pickle is one line, not a warning first
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RegistryError(f"{path}: not a loadable state_dict ({first[:200]})") from exc
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), dict):
        obj = next(iter(obj.values()))  # {"state_dict": {...}} checkpoints
    if not isinstance(obj, dict) or not obj:
        raise RegistryError(f"{path}: expected a state_dict (a dict of tensors)")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise RegistryError(f"{path}: entry {key!r} is not a tensor")
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise RegistryError(f"{path}: entry {key!r} has dtype {value.dtype}")
        out[str(key)] = value.detach().to(torch.float64).numpy()
    return out


def rename(
    tensors: dict[str, np.ndarray], names: dict[str, str], path: Path
) -> dict[str, np.ndarray]:
    """Map file keys to parameter names: explicit `names`, then torch.nn.RNN conventions."""
    tensors = dict(tensors)
    out: dict[str, np.ndarray] = {}
    for ours, key in names.items():
        if key not in tensors:
            raise RegistryError(f"{path}: [names] maps {ours} to {key!r}, which is not in the file")
        out[ours] = tensors.pop(key)

    def take(suffix: str) -> np.ndarray | None:
        hits = [k for k in tensors if k == suffix or k.endswith("." + suffix)]
        if len(hits) > 1:
            raise RegistryError(
                f"{path}: several keys end in {suffix} ({', '.join(hits)}); use [names]"
            )
        return tensors.pop(hits[0]) if hits else None

    for ours, suffix in (("W_h", "weight_hh_l0"), ("W_x", "weight_ih_l0")):
        value = take(suffix)
        if value is not None and ours not in out:
            out[ours] = value
    b_ih, b_hh = take("bias_ih_l0"), take("bias_hh_l0")
    if "b" not in out and (b_ih is not None or b_hh is not None):
        out["b"] = np.sum([b for b in (b_ih, b_hh) if b is not None], axis=0)
    for prefix in _READOUTS:
        for ours, part in (("W_out", "weight"), ("b_out", "bias")):
            key = f"{prefix}.{part}"
            if key in tensors and ours not in out:
                out[ours] = tensors.pop(key)
    out.update({k: v for k, v in tensors.items() if k not in out})
    return out


def read_state_dict_network(path: Path) -> tuple[Condition, NetworkRecord]:
    """One network from a state_dict file and its sidecar (nothing is written)."""
    side_path = sidecar_for(path)
    side = read_sidecar(side_path)
    names = side.get("names", {})
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise RegistryError(f"{side_path}: [names] must map parameter names to file keys")
    final = rename(load_state_dict(path), names, path)
    init: dict[str, np.ndarray] = {}
    if "init" in side:
        init_path = side_path.parent / str(side["init"])
        if not init_path.exists():
            raise RegistryError(f"{side_path}: init file {init_path} does not exist")
        init = rename(load_state_dict(init_path), names, init_path)
    if "W_h" not in final:
        raise RegistryError(f"{path}: no recurrent matrix found (weight_hh_l0 or W_h; see [names])")
    if "W_out" not in final:
        raise RegistryError(
            f"{path}: no readout found (a Linear named {', '.join(_READOUTS)}, or W_out in [names])"
        )
    _check_finite(final, path)
    if init:
        _check_finite(init, side_path.parent / str(side["init"]))
    typed = _typed(side, side_path)
    cond = {k: side[k] for k in (*CONDITION_FIELDS, "factors") if k in side}
    w_h = final["W_h"]
    if "hidden_size" not in cond and w_h.ndim == 2:
        cond["hidden_size"] = int(w_h.shape[0])
    try:
        condition = Condition.from_dict(cond)
    except (TypeError, RegistryError) as exc:
        raise RegistryError(f"{side_path}: {exc}") from exc
    summary: dict[str, Any] = {k: typed[k] for k in _SUMMARY}
    update = side.get("update", "rnn")  # how to run it on the probe sets (probe_ingested)
    if update not in ("rnn", "leaky"):
        raise RegistryError(f"{side_path}: update must be 'rnn' or 'leaky', got {update!r}")
    record = NetworkRecord(
        seed=typed["seed"],
        weights_final=final,
        weights_init=init,
        provenance={"source_file": path.name, "update": update},
        **summary,
    )
    return condition, record
