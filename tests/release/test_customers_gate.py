"""The customers gate: no customer may lose more accuracy than the margin allows."""

from __future__ import annotations

from modelcycle.release.customers import customers_gate
from modelcycle.settings import Settings

CUSTOMERS = ["acme"] * 4 + ["globex"] * 4
LABELS = [1, 0, 1, 0, 1, 0, 1, 0]


def test_a_challenger_as_accurate_for_every_customer_passes_naming_the_closest() -> None:
    gate = customers_gate(CUSTOMERS, LABELS, LABELS, LABELS, margin=0.05)
    assert gate.name == "customers"
    assert gate.passed
    assert gate.detail == (
        "no customer worse by more than 0.05 (closest: acme, accuracy 1.000 against the "
        "champion's 1.000)"
    )


def test_one_customer_worse_by_more_than_the_margin_fails_the_gate_naming_it() -> None:
    # globex loses one row of four; acme gains one: better on average, worse for globex
    champion = [1, 0, 0, 0, 1, 0, 1, 0]
    challenger = [1, 0, 1, 0, 1, 0, 0, 0]
    gate = customers_gate(CUSTOMERS, LABELS, champion, challenger, margin=0.05)
    assert not gate.passed
    assert gate.detail == (
        "customer globex: accuracy 0.750 against the champion's 1.000, worse by more than 0.05"
    )
    assert customers_gate(CUSTOMERS, LABELS, champion, challenger, margin=0.3).passed


def test_without_a_champion_the_gate_passes_and_says_so() -> None:
    gate = customers_gate(CUSTOMERS, LABELS, None, LABELS, margin=0.05)
    assert (gate.passed, gate.detail) == (True, "no champion to compare with")


def test_the_customer_margin_defaults_to_five_points_and_is_configurable() -> None:
    assert Settings().gate_customer_margin == 0.05
    assert Settings(gate_customer_margin=0.1).gate_customer_margin == 0.1
