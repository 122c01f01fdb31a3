"""Stored networks run again from their stored weights on probe sets of any size, so a DSA fit
can use many more trials than training stored (32), without storing their trajectories.

Each network's hidden states on `trials` probe trials (probe set `replica`: 0 is the stored
"id" set's stream, 1 its independent replica "id_b"'s) are computed in chunks of networks and
trials and summed into the delay embedding's Grams (`dsa.GramStats`); only those are kept.
The probe inputs are the task's own (`Task.probe`, from the condition stored in `networks`),
the update rule the network's: this project's model (`training.model.forward`, the standard
tanh RNN or µP's leaky one) for networks trained here and ingested with `update = "leaky"`;
`torch.nn.RNN`'s for those ingested with `update = "rnn"` (`training.probe_ingested`). At the
training's probe size, replica 0 reproduces the stored "id" trajectories (tested).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: networks run through the forward pass at once, and trials per chunk (bounds memory)
CHUNK_NETWORKS = 8
CHUNK_TRIALS = 128


@dataclass(frozen=True)
class Runnable:
    """What running a stored network needs: its task (probe inputs) and update rule."""

    task: Any
    spec: Any  # training.model.ModelSpec
    update: str  # "model" (this project's forward) or "rnn" (torch.nn.RNN's tanh update)
    probe_seed: int

    @property
    def key(self) -> tuple:
        return (
            self.task.name,
            json.dumps(self.task.params(), sort_keys=True),
            self.spec,
            self.update,
            self.probe_seed,
        )


def runnables(registry, ids: Sequence[str], con=None) -> dict[str, Runnable]:
    """Per network id: its task, model and update rule, from the `networks` table."""
    from degeneracy.registry.errors import RegistryError
    from degeneracy.tasks import TaskError, make_task
    from degeneracy.training.model import ModelSpec
    from degeneracy.training.trainer import TrainConfig

    sql = (
        "SELECT network_id, task, complexity, hidden_size, regime, gamma, factors, provenance "
        "FROM networks WHERE network_id IN (SELECT unnest(?::VARCHAR[]))"
    )
    if con is not None:
        rows = con.cursor().execute(sql, [list(ids)]).fetchall()
    else:
        with registry.connect(read_only=True) as c:
            rows = c.execute(sql, [list(ids)]).fetchall()
    out = {}
    for nid, task_name, complexity, hidden, regime, gamma, factors, provenance in rows:
        factors = json.loads(factors) if isinstance(factors, str) else (factors or {})
        prov = json.loads(provenance) if isinstance(provenance, str) else (provenance or {})
        try:
            task = make_task(task_name, complexity=complexity, **factors.get("task_params", {}))
        except TaskError as exc:
            raise RegistryError(f"{nid}: cannot rebuild its task to re-probe it ({exc})") from exc
        spec = ModelSpec(
            task.n_inputs, task.n_outputs, hidden, regime, gamma, factors.get("tau", 0.1)
        )
        update = "rnn" if prov.get("update") == "rnn" else "model"
        seed = factors.get("train", {}).get("probe_seed", TrainConfig().probe_seed)
        out[nid] = Runnable(task, spec, update, int(seed))
    missing = [i for i in ids if i not in out]
    if missing:
        raise RegistryError(f"unknown network id(s): {', '.join(missing[:3])}")
    return out


def states(
    registry, ids: Sequence[str], trials: int, replica: int = 0, ood: bool = False, con=None
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Hidden states of stored networks on `trials` probe trials, in chunks: yields (ids of
    the chunk, states (networks, trials of the chunk, T, units)); every network of `ids` sees
    every trial once, the trials in order."""
    import torch

    from degeneracy.training.model import PARAM_NAMES, forward, raw
    from degeneracy.training.probe_ingested import _rnn

    info = runnables(registry, ids, con)
    by_key: dict[tuple, list[str]] = {}
    for i in ids:
        by_key.setdefault(info[i].key, []).append(i)
    for group in by_key.values():
        run = info[group[0]]
        probe = run.task.probe(trials, run.probe_seed, ood=ood, replica=replica)
        for start in range(0, len(group), CHUNK_NETWORKS):
            part = group[start : start + CHUNK_NETWORKS]
            weights = _weights(registry, part, run.update == "rnn")
            _check_shapes(part, weights, run)
            for t0 in range(0, trials, CHUNK_TRIALS):
                x = probe.inputs[t0 : t0 + CHUNK_TRIALS]
                if run.update == "rnn":
                    yield part, np.stack([_rnn(w, x)[0] for w in weights])
                    continue
                params = raw(run.spec, {n: torch.from_numpy(weights[n]) for n in PARAM_NAMES})
                xt = torch.from_numpy(np.ascontiguousarray(x))
                with torch.no_grad():
                    rates, _ = forward(run.spec, params, xt.expand(len(part), *xt.shape))
                assert rates is not None
                yield part, rates.numpy()


def _check_shapes(ids: list[str], weights, run: Runnable) -> None:
    """A network whose stored input matrix does not fit its task cannot be run on the task's
    probes: one clear error (stored trajectories stay usable with trials = 0)."""
    from degeneracy.registry.errors import RegistryError

    want = (run.spec.hidden, run.task.n_inputs)
    shapes = (
        [np.shape(w.get("W_x")) for w in weights]
        if isinstance(weights, list)
        else [np.shape(weights["W_x"])[1:]] * len(ids)
    )
    for nid, shape in zip(ids, shapes):
        if tuple(shape) != want:
            raise RegistryError(
                f"{nid}: its input matrix is {tuple(shape)}, its task ({run.task.name}) needs "
                f"{want}, so it cannot be re-probed; pass DSA trials = 0 to fit the stored "
                "probe set instead"
            )


def _weights(registry, ids: list[str], per_network: bool):
    """Stacked final parameters {name: (networks, ...)}; per network dicts for "rnn" networks
    (their state_dicts may lack a bias or the readout)."""
    from degeneracy.registry.errors import RegistryError
    from degeneracy.training.model import PARAM_NAMES

    if not per_network:
        return {n: registry.load_weights(ids, n) for n in PARAM_NAMES}
    out = []
    for i in ids:
        w = {}
        for n in PARAM_NAMES:
            try:
                w[n] = registry.load_weights([i], n)[0]
            except RegistryError:
                pass
        out.append(w)
    return out


def gram_stats(
    registry,
    ids: Sequence[str],
    trials: int,
    n_delays: int,
    replica: int = 0,
    ood: bool = False,
    con=None,
) -> dict[str, Any]:
    """Per network: its delay embedding's accumulated Grams (`dsa.GramStats`) on `trials`
    probe trials of probe set `replica`."""
    from degeneracy.analysis.dsa import GramStats

    out: dict[str, GramStats] = {}
    for part, chunk in states(registry, ids, trials, replica, ood, con):
        for nid, s in zip(part, chunk):
            if nid not in out:
                out[nid] = GramStats.empty(n_delays, s.shape[-1])
            out[nid].add(s)
    return out
