"""Network ids are stable: pinned for known conditions, and unchanged when a setting is added."""

import dataclasses

import pytest

from degeneracy.registry.ids import network_id
from degeneracy.tasks import TASKS, make_task
from degeneracy.training import trainer
from degeneracy.training.sweep import build_experiment
from degeneracy.training.trainer import Experiment, TrainConfig

#: ids computed by earlier releases: a change here re-trains every stored network on resume
PINNED = [
    (("flipflop", 2, 64, {}), "n0a7e2729d066e8cd"),
    (("path_integration", 2, 64, {}), "nc299421b7f118c7c"),
    (("path_integration", 3, 64, {"inputs": "polar"}), "n01e9aa534233027e"),
]
#: the TrainConfig fields and task knobs hashed since ids were fixed; anything added since must
#: be registered in LATER_TRAIN_SETTINGS / the task's `later_knobs`
FIRST_TRAIN_FIELDS = {
    "lr",
    "batch",
    "steps_per_epoch",
    "max_epochs",
    "threshold",
    "stop_epochs",
    "plateau_patience",
    "plateau_factor",
    "grad_clip",
    "probe_trials",
    "probe_seed",
}
FIRST_KNOBS = {
    "flipflop": {"channels", "p", "steps"},
    "delayed_discrimination": {
        "channels",
        "delay_min",
        "delay_max",
        "f_min",
        "f_max",
        "min_gap",
        "aux_output",
    },
    "sine": {"channels", "n_freq", "f_min", "f_max", "dt", "steps"},
    "path_integration": {"dims", "steps", "max_speed", "turn_sd", "half_width"},
}


@pytest.mark.parametrize("args, expected", PINNED)
def test_ids_of_known_conditions_do_not_change(args, expected):
    task, complexity, hidden, params = args
    # explicit budget: ids must not move when a preset's default does (a preset change is a
    # new condition by design; these pins guard the hashing itself)
    exp = build_experiment(task, complexity, hidden, task_params=params, train={"max_epochs": 60})
    assert network_id(exp.condition().to_dict(), 0) == expected


def test_every_setting_added_later_is_registered_with_its_first_value():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields - FIRST_TRAIN_FIELDS <= set(trainer.LATER_TRAIN_SETTINGS), (
        "a new TrainConfig field changes every network id unless LATER_TRAIN_SETTINGS lists it"
    )
    for name, cls in TASKS.items():
        knobs = {f.name for f in dataclasses.fields(cls)}
        assert knobs - FIRST_KNOBS[name] <= set(cls.later_knobs), name


def test_a_setting_added_with_a_default_keeps_stored_ids(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Newer(TrainConfig):
        warmup_epochs: int = 0  # a setting "added in a later release"

    task = make_task("flipflop", 2)
    before = network_id(Experiment(task, 64, train=TrainConfig()).condition().to_dict(), 3)
    unregistered = network_id(Experiment(task, 64, train=Newer()).condition().to_dict(), 3)
    assert unregistered != before  # what happened before: every id moved
    monkeypatch.setitem(trainer.LATER_TRAIN_SETTINGS, "warmup_epochs", 0)
    same = Experiment(task, 64, train=Newer())
    assert network_id(same.condition().to_dict(), 3) == before
    other = Experiment(task, 64, train=Newer(warmup_epochs=5))
    assert network_id(other.condition().to_dict(), 3) != before
    assert other.condition().factors["train"]["warmup_epochs"] == 5


def test_a_task_knob_at_its_first_value_keeps_ids_and_probes():
    cart = make_task("path_integration", 2)
    assert "inputs" not in cart.params()
    polar = make_task("path_integration", 2, inputs="polar")
    assert polar.params()["inputs"] == "polar"
    a = cart.probe(4, 0).inputs
    b = make_task("path_integration", 2, inputs="cartesian").probe(4, 0).inputs
    assert (a == b).all()
