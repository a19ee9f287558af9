"""A moderate, steady load for bench/serving_shadow.py: one connection sending single-row requests
at a fixed rate (wrk only saturates), so shadow scoring's cost can be read where it should score
every request, and what it scored can be checked against what was sent."""

from __future__ import annotations

import http.client
import statistics
import time
from urllib.parse import urlsplit

from bench.serving_load import Result, Server

PACED_RATE = 100.0  # requests per second: a tenth of what one connection reaches at saturation
PACED_SCENARIO = f"1 row, {PACED_RATE:g} req/s"


def paced_run(server: Server, body: str, seconds: float, rate: float = PACED_RATE) -> Result:
    """`rate` requests a second for `seconds` on one keep-alive connection; latency from send
    to the answer's last byte (the client sleeps between requests, so it is rarely behind)."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {**server.headers, "Content-Type": "application/json"}
    data = body.encode()
    latencies: list[float] = []
    errors = 0
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sent = time.perf_counter()
        try:
            connection.request("POST", server.path, body=data, headers=headers)
            answer = connection.getresponse()
            answer.read()
            ok = answer.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            connection.close()
        latencies.append((time.perf_counter() - sent) * 1000)
        errors += 0 if ok else 1
    elapsed = time.perf_counter() - start
    connection.close()
    cuts = statistics.quantiles(latencies, n=100)
    result = Result(server.name, PACED_SCENARIO, count / elapsed, cuts[49], cuts[98], errors)
    print(
        f"{server.name:10} {PACED_SCENARIO:13} {result.requests_per_s:9.0f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {errors}"
    )
    return result
