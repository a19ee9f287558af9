"""One line per model saying which version serves and why, from the release trail.

The demo ends with it: "classifier: champion v6 (approved automatically for 2026-01-09, gates
passed); v7 stopped: metric: pr_auc …". Reads the store and the registry; decides nothing.
"""

from __future__ import annotations

from modelcycle.release.rules import CHAMPION, ReleaseRecord, failed_gates
from modelcycle.release.service import Releases


def serving_line(releases: Releases, model: str) -> str:
    champion = releases.registry.aliases(model).get(CHAMPION)
    if champion is None:
        return f"{model}: no champion yet"
    requests = releases.requests(model)
    why = _why_serving(releases, next((r for r in requests if r.version == champion), None))
    stopped = [
        f"v{r.version} stopped: {_failures(r)}"
        for r in requests
        if int(r.version) > int(champion) and not r.gates_passed and r.state == "pending"
    ]
    return "; ".join([f"{model}: champion v{champion} ({why})", *stopped])


def _why_serving(releases: Releases, request: ReleaseRecord | None) -> str:
    if request is None:
        return "the first version registered"
    decisions = releases.get(request.id)[1]
    approval = next((d for d in reversed(decisions) if d.action == "approve"), None)
    if approval is None:
        return f"release request {request.id} is {request.state}"
    day = request.lineage.get("day") or approval.at.date().isoformat()
    who = "automatically" if approval.actor_kind == "system" else f"by {approval.actor}"
    gates = "gates passed" if request.gates_passed else "gates overridden"
    return f"approved {who} for {day}, {gates}"


def _failures(request: ReleaseRecord) -> str:
    failed = set(failed_gates(request.gates))
    return "; ".join(f"{g.name}: {g.detail}" for g in request.gates if g.name in failed)
