"""The fleet simulator: the project's data source, realistic enough to train meaningful models.

`simulate_fleet` writes `DIR/YYYY-MM-DD/device-NNNN.csv` per day and device, `DIR/devices.csv`
and the maintenance ledger `DIR/maintenance.csv`. Same spec, same bytes.
"""

from modelcycle.simulate.fleet import (
    FleetPlan,
    FleetSpec,
    build_fleet_plan,
    device_id,
    sensor_names,
)
from modelcycle.simulate.writer import SimulationSummary, simulate_fleet

__all__ = [
    "FleetPlan",
    "FleetSpec",
    "SimulationSummary",
    "build_fleet_plan",
    "device_id",
    "sensor_names",
    "simulate_fleet",
]
