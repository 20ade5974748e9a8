"""Every parameter of the deployed flows is described: Prefect shows the descriptions in the
UI's custom-run form (it reads them from the flows' docstrings when deploying)."""

from __future__ import annotations

import inspect

import pytest
from prefect.utilities.callables import parameter_schema

from flows.evolve import evolve, evolve_all


@pytest.mark.parametrize("flow", [evolve, evolve_all], ids=lambda f: f.name)
def test_each_parameter_of_a_deployed_flow_has_a_description(flow):
    schema = parameter_schema(flow.fn)
    assert list(schema.properties) == list(inspect.signature(flow.fn).parameters)
    for name, field in schema.properties.items():
        assert len(field.get("description", "")) > 10, name
