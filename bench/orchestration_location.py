"""A code location for bench/orchestration.py only: the shipped definitions with the
multiprocess executor (each step in its own process), so the benchmark can measure the executor
that definitions.py did not choose, launched by the same daemon."""

import dagster as dg

from modelcycle.orchestration.definitions import build_definitions
from modelcycle.settings import load_settings

defs = build_definitions(load_settings(), executor=dg.multiprocess_executor)
