import pytest

from degeneracy.registry.store import Registry
from tests.factories import condition, make_records


@pytest.fixture
def registry(tmp_path):
    """A new registry opened as users open one (`degeneracy.open`: with the metric SQL
    functions)."""
    from degeneracy import api

    Registry.create(tmp_path / "reg")
    return api.open(tmp_path / "reg")


@pytest.fixture
def filled(registry):
    """A registry with two ensembles (complexity 1 and 2) of three networks each."""
    registry.write_ensemble(condition(complexity=1), make_records([0, 1, 2], rng_seed=1))
    registry.write_ensemble(condition(complexity=2), make_records([0, 1, 2], rng_seed=2))
    return registry
