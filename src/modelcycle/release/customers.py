"""The customers gate: a challenger better on average may still be worse for one customer.

Per customer, the accuracy of champion and challenger on the same held-out rows the metric gate
uses; the gate fails when some customer's accuracy drops by more than the margin
(`MODELCYCLE_GATE_CUSTOMER_MARGIN`). A pure rule on plain sequences: no lake, no registry.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelcycle.release.rules import GateResult


def customer_accuracies(
    customers: Sequence[str], labels: Sequence[int], predictions: Sequence[int]
) -> dict[str, float]:
    """Each customer's share of rows predicted right."""
    right: dict[str, int] = {}
    rows: dict[str, int] = {}
    for customer, label, predicted in zip(customers, labels, predictions, strict=True):
        rows[customer] = rows.get(customer, 0) + 1
        right[customer] = right.get(customer, 0) + int(int(label) == int(predicted))
    return {customer: right[customer] / n for customer, n in rows.items()}


def customers_gate(
    customers: Sequence[str],
    labels: Sequence[int],
    champion: Sequence[int] | None,
    challenger: Sequence[int],
    *,
    margin: float,
) -> GateResult:
    """Pass unless a customer's accuracy with the challenger is below the champion's − `margin`;
    the detail names the customer with the largest drop and both accuracies."""
    if champion is None:
        return GateResult("customers", True, "no champion to compare with", {"margin": margin})
    if not customers:
        return GateResult("customers", True, "no held-out rows with a customer", {"margin": margin})
    theirs = customer_accuracies(customers, labels, champion)
    ours = customer_accuracies(customers, labels, challenger)
    worst = max(sorted(theirs), key=lambda customer: theirs[customer] - ours[customer])
    drop = theirs[worst] - ours[worst]
    values = {"margin": margin, "customers": len(theirs), "worst_customer": worst, "drop": drop}
    both = f"accuracy {ours[worst]:.3f} against the champion's {theirs[worst]:.3f}"
    if drop > margin:
        return GateResult(
            "customers", False, f"customer {worst}: {both}, worse by more than {margin}", values
        )
    return GateResult(
        "customers",
        True,
        f"no customer worse by more than {margin} (closest: {worst}, {both})",
        values,
    )
