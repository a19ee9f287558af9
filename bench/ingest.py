"""Ingest, features and training at reference scale, against the baselines in the same run.

- validated ingest (modelcycle) vs the pandas baseline a data scientist would write
  (read_csv per file + concat + to_parquet) and a bare polars scan_csv → sink_parquet with a
  fixed schema and no validation (the near-limit anchor);
- window features for one day;
- training both models on 7 reference-scale days.

Data comes from the simulator (1000 devices × 100 sensors × 1440 minutes a day) and is cached
under bench/.data. Run with `make bench-ingest`; results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import date, timedelta
from pathlib import Path

from bench.report import Measurement, machine_line, measure, write_section

DATA = Path(__file__).resolve().parent / ".data"
START = date(2026, 1, 1)

SIMULATE = """
import sys
from datetime import date
from pathlib import Path
from modelcycle.simulate import FleetSpec, simulate_fleet
spec = FleetSpec(devices=int(sys.argv[2]), sensors=100, days=int(sys.argv[3]),
                 start=date.fromisoformat(sys.argv[4]), seed=7)
simulate_fleet(spec, Path(sys.argv[1]))
"""

INGEST = """
import sys
from datetime import date
from modelcycle.lake.ingest import ingest_day
from modelcycle.storage import open_store
report = ingest_day(date.fromisoformat(sys.argv[3]), raw=open_store(sys.argv[1]),
                    lake=open_store(sys.argv[2]))
assert report.balanced
"""

PANDAS = """
import sys, glob
import pandas as pd
files = sorted(glob.glob(sys.argv[1] + '/device-*.csv'))
frames = []
for f in files:
    try:
        frame = pd.read_csv(f, on_bad_lines='skip')
    except Exception:
        continue  # the unreadable file
    sensors = [c for c in frame.columns if c.startswith('s')]
    frame[sensors] = frame[sensors].apply(pd.to_numeric, errors='coerce')  # garbled values
    frames.append(frame)
pd.concat(frames).to_parquet(sys.argv[2], compression='zstd')
"""

POLARS = """
import sys, glob
import polars as pl
files = sorted(glob.glob(sys.argv[1] + '/device-*.csv'))
files = [f for f in files if open(f, 'rb').read(10) == b'timestamp,']  # skip unreadable files
header = open(files[0]).readline().strip().split(',')
schema = {name: (pl.Float32 if name.startswith('s') else pl.String) for name in header}
pl.scan_csv(files, schema=schema, ignore_errors=True, truncate_ragged_lines=True)\\
  .sink_parquet(sys.argv[2], compression='zstd')
"""

FEATURES = """
import sys
from datetime import date
from modelcycle.features.store import build_day_features, readings_spec
from modelcycle.storage import open_store
lake = open_store(sys.argv[1]); day = date.fromisoformat(sys.argv[2])
build_day_features(lake, day, readings_spec(lake, day))
"""

TRAIN = """
import sys
from datetime import date
from modelcycle.storage import open_store
from modelcycle.settings import Settings
from modelcycle.training.dataset import build_training_set
from modelcycle.training.recipe import window_models
lake, raw = open_store(sys.argv[1]), open_store(sys.argv[2])
data = build_training_set(lake=lake, raw=raw, end=date.fromisoformat(sys.argv[3]), window_days=7)
# the recipe's models, fitted and exported: the registry's share is measured by bench.orchestration
for _name, model in window_models(Settings()):
    model.fit(data.x_train, data.y_train)
    model.to_onnx(len(data.feature_names))
print('windows', len(data.y_train) + len(data.y_test))
"""


def _ensure_days(devices: int, days: int) -> Path:
    raw = DATA / f"raw-{devices}"
    wanted = [START + timedelta(days=i) for i in range(days)]
    if not all((raw / d.isoformat()).exists() for d in wanted):
        shutil.rmtree(raw, ignore_errors=True)
        print(f"simulating {days} day(s) of {devices} devices × 100 sensors into {raw}")
        measure("simulate", SIMULATE, str(raw), str(devices), str(days), START.isoformat())
    return raw


def _ratio(a: Measurement, b: Measurement) -> str:
    return f"{a.seconds / b.seconds:.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--train-days", type=int, default=7)
    args = parser.parse_args()
    raw = _ensure_days(args.devices, args.train_days)
    day_folder = raw / START.isoformat()
    size_gb = sum(p.stat().st_size for p in day_folder.iterdir()) / 1e9
    out = DATA / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lake = DATA / "lake"
    shutil.rmtree(lake, ignore_errors=True)

    pandas = measure("pandas baseline", PANDAS, str(day_folder), str(out / "pandas.parquet"))
    polars = measure("bare polars", POLARS, str(day_folder), str(out / "polars.parquet"))
    ingest = measure("modelcycle ingest", INGEST, str(raw), str(lake), START.isoformat())
    features = measure("features (1 day)", FEATURES, str(lake), START.isoformat())
    for offset in range(1, args.train_days):
        day = (START + timedelta(days=offset)).isoformat()
        measure(f"ingest {day}", INGEST, str(raw), str(lake), day)
        measure(f"features {day}", FEATURES, str(lake), day)
    last = (START + timedelta(days=args.train_days - 1)).isoformat()
    train = measure("train", TRAIN, str(lake), str(raw), last)

    rows = [
        ("pandas read_csv + concat + to_parquet", pandas, _ratio(pandas, polars)),
        ("bare polars scan_csv → sink_parquet (anchor)", polars, "1.00×"),
        ("**modelcycle ingest (validated, quarantine, report)**", ingest, _ratio(ingest, polars)),
    ]
    table = "\n".join(
        f"| {name} | {m.seconds:.1f} | {m.peak_mib:,.0f} | {ratio} |" for name, m, ratio in rows
    )
    markdown = f"""## Ingest, features, training (`make bench-ingest`)

One simulated reference-scale day: {args.devices} devices × 100 sensors × 1440 minutes,
{size_gb:.2f} GB of CSV. Measured {machine_line()}; each step in its own process.

| step | wall s | peak MiB | time vs bare polars |
|---|---:|---:|---:|
{table}

- modelcycle ingest is **{pandas.seconds / ingest.seconds:.1f}× faster than the pandas baseline**
  (target ≥ 2×) and **{ingest.seconds / polars.seconds:.2f}× the bare polars time**
  (target ≤ 1.5×), at {ingest.peak_mib:,.0f} MiB peak (target ≤ 1024).
- Window features for one day: **{features.seconds:.1f} s**, {features.peak_mib:,.0f} MiB peak
  (target < 10 s).
- Training both models on {args.train_days} days (feature partitions already built, as the
  daily job leaves them; labels, time split, LightGBM + IsolationForest fit, ONNX export):
  **{train.seconds:.1f} s**, {train.peak_mib:,.0f} MiB peak (target < 180 s).
"""
    write_section("ingest", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
