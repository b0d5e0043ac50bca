"""The settings cascade as pure rules."""

from __future__ import annotations

import pytest

from core.kernel.errors import Forbidden
from core.tenancy.cascade import Layer, check_write, resolve


def test_lower_levels_override_and_provenance_names_the_source() -> None:
    resolved = resolve([
        Layer("group", "g1", {"voice": "verse"}),
        Layer("platform", "platform", {"voice": "alloy", "model": "m0"}),
        Layer("account", "a1", {"model": "m2"}),
        Layer("solution", "s1", {"model": "m1"}),
    ])
    assert resolved["voice"].value == "verse" and resolved["voice"].source == "group"
    assert resolved["model"].value == "m2" and resolved["model"].source_id == "a1"


def test_a_solution_lock_stops_lower_overrides() -> None:
    resolved = resolve([
        Layer("platform", "platform", {"model": "m0"}),
        Layer("solution", "s1", {"model": "m1"}, frozenset({"model"})),
        Layer("account", "a1", {"model": "m2"}),
    ])
    assert resolved["model"].value == "m1"
    assert resolved["model"].source == "solution" and resolved["model"].locked


def test_lock_without_solution_value_pins_the_platform_default() -> None:
    resolved = resolve([
        Layer("platform", "platform", {"model": "m0"}),
        Layer("solution", "s1", {}, frozenset({"model"})),
        Layer("group", "g1", {"model": "m3"}),
    ])
    assert (resolved["model"].value, resolved["model"].source) == ("m0", "platform")


def test_writing_a_locked_key_below_the_solution_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="locked"):
        check_write("account", {"model": "x"}, frozenset({"model"}))
    check_write("solution", {"model": "x"}, frozenset({"model"}))
    check_write("group", {"voice": "x"}, frozenset({"model"}))
