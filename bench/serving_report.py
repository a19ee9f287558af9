"""The section bench/serving.py writes: the figures per server and scenario, and the verdicts.

Absolute times move 2-4x with the machine, so each latency target is judged twice: against the
absolute figure for a quiet machine, and as a ratio to the floor (bench/serving_floor.py: raw
ASGI, orjson, ONNX Runtime) measured in the same run.
"""

from __future__ import annotations

from bench.report import machine_line
from bench.serving_load import SCENARIOS, Result
from bench.verdict import Conditions, Target, Verdicts, run_line

PEERS = ("mlflow", "mlflow inputs")


def judge(results: list[Result], facts: dict[str, tuple[float, float]]) -> Verdicts:
    """The serving targets of issues 4 and 17, each with its verdict."""
    by = {(r.server, r.scenario): r for r in results}
    verdicts = Verdicts("serving")
    ours_c32, floor_c32 = by[("modelcycle", "1 row, c32")], by[("floor", "1 row, c32")]
    verdicts.add(Target("p99 at c32, 1 row", ours_c32.p99_ms, 20.0, " ms"))
    verdicts.add(Target("p99 at c32 / floor's", ours_c32.p99_ms / floor_c32.p99_ms, 1.2, "×"))
    (ours_cold, ours_rss), (floor_cold, _) = facts["modelcycle"], facts["floor"]
    verdicts.add(Target("cold start from the cache", ours_cold, 2.0, " s"))
    verdicts.add(Target("cold start / floor's", ours_cold / floor_cold, 1.3, "×"))
    verdicts.add(Target("resident memory", ours_rss, 300, " MiB", digits=0))
    for scenario in ("1 row, c1", "1 row, c8", "1 row, c32"):
        ours = by[("modelcycle", scenario)]
        best_peer = max(
            (by[(peer, scenario)] for peer in PEERS if (peer, scenario) in by),
            key=lambda result: result.requests_per_s,
        )
        if best_peer.requests_per_s > 0:
            verdicts.add(
                Target(
                    f"req/s vs mlflow's best input, {scenario}",
                    ours.requests_per_s / best_peer.requests_per_s,
                    100,
                    "×",
                    higher_is_better=True,
                    digits=0,
                )
            )
        verdicts.add(
            Target(
                f"req/s vs the FastAPI bare handler, {scenario}",
                100 * ours.requests_per_s / by[("bare", scenario)].requests_per_s,
                70,
                " %",
                higher_is_better=True,
                digits=0,
            )
        )
    failed = sum(r.errors for r in results if r.server == "modelcycle")
    verdicts.add(Target("failed requests (modelcycle)", failed, 0, "", digits=0))
    return verdicts


def render(
    results: list[Result],
    facts: dict[str, tuple[float, float]],
    first_start: float,
    seconds: float,
    conditions: Conditions,
    verdicts: Verdicts,
) -> str:
    by = {(r.server, r.scenario): r for r in results}
    lines = [
        "## Serving (`make bench-serving`)",
        "",
        f"{machine_line()}; wrk, 1 thread, {seconds:g} s per scenario, loopback; the registered",
        "LightGBM classifier (501 features). modelcycle runs with API keys, validation,",
        "metrics and the prediction log on, and reads the registry from an `mlflow server` on",
        "loopback, as deployed (its alias poll is a REST GET; MLflow is imported only to",
        "download a version not in the cache). floor is a raw ASGI app with orjson and ONNX",
        "Runtime and nothing else (serving_floor.py), the lower bound; bare is FastAPI +",
        "pydantic + ONNX Runtime in ~20 lines (serving_bare.py), what a data scientist would",
        "write. mlflow is",
        "`mlflow models serve --env-manager local` of the same version, sent `dataframe_split`",
        "(mlflow) and column-wise `inputs` (mlflow inputs), its two input forms.",
        run_line(conditions),
        "",
        "| server | scenario | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.scenario} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    lines += ["", "| server | cold start s | RSS MiB |", "|---|---:|---:|"]
    for name, (cold, rss) in facts.items():
        lines.append(f"| {name} | {cold:.2f} | {rss:.0f} |")
    lines += [
        "",
        f"modelcycle's first start (empty cache, MLflow imported, artifacts fetched from the "
        f"registry) took {first_start:.2f} s; the cold start and memory above are a restart with "
        "the cache, measured after the load.",
        "",
        "| scenario | modelcycle / floor (req/s) | modelcycle / bare (req/s) "
        "| modelcycle p99 / floor p99 |",
        "|---|---:|---:|---:|",
    ]
    for scenario, _, _ in SCENARIOS:
        ours, floor, bare = (by[(s, scenario)] for s in ("modelcycle", "floor", "bare"))
        lines.append(
            f"| {scenario} | {ours.requests_per_s / floor.requests_per_s:.0%} "
            f"| {ours.requests_per_s / bare.requests_per_s:.0%} "
            f"| {ours.p99_ms / floor.p99_ms:.2f}× |"
        )
    lines += ["", verdicts.table()]
    return "\n".join(lines)
