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
import statistics
from datetime import date, timedelta
from pathlib import Path

from bench.report import Measurement, machine_line, measure, write_section
from bench.verdict import Conditions, Target, Verdicts, run_line

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

# The floor for features: the same hourly aggregates (the same SQL text) as one bare DuckDB query
# from the day's Parquet to a Parquet file, with nothing of modelcycle imported.
FEATURES_FLOOR = """
import sys
from pathlib import Path
import duckdb
con = duckdb.connect(config={"threads": 2})
sql = Path(sys.argv[1]).read_text().replace("__SOURCE__", "read_parquet('" + sys.argv[2] + "')")
con.execute("COPY (" + sql + ") TO '" + sys.argv[3] + "' (FORMAT parquet, COMPRESSION zstd)")
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


def _median_run(runs: list[Measurement]) -> Measurement:
    return Measurement(
        name=runs[0].name,
        seconds=statistics.median(r.seconds for r in runs),
        peak_mib=max(r.peak_mib for r in runs),
    )


def _ratio(a: Measurement, b: Measurement) -> str:
    return f"{a.seconds / b.seconds:.2f}×"


def _features_floor(lake: Path, day: str, out: Path) -> Measurement:
    """The bare DuckDB query over the same readings partition, with the SQL features use."""
    from datetime import date as date_type

    from modelcycle.features.store import readings_spec
    from modelcycle.features.windows import feature_sql
    from modelcycle.lake import layout
    from modelcycle.storage import open_store

    store = open_store(str(lake))
    when = date_type.fromisoformat(day)
    sql_file = out / "features.sql"
    sql_file.write_text(feature_sql(readings_spec(store, when), "__SOURCE__"))
    readings = lake / layout.readings_partition(when)
    return measure(
        "features floor (bare DuckDB)",
        FEATURES_FLOOR,
        str(sql_file),
        str(readings),
        str(out / "features-floor.parquet"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--train-days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved floor/ingest pairs")
    args = parser.parse_args()
    raw = _ensure_days(args.devices, args.train_days)
    day_folder = raw / START.isoformat()
    size_gb = sum(p.stat().st_size for p in day_folder.iterdir()) / 1e9
    out = DATA / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lake = DATA / "lake"
    shutil.rmtree(lake, ignore_errors=True)

    conditions = Conditions()
    pandas = measure("pandas baseline", PANDAS, str(day_folder), str(out / "pandas.parquet"))
    # The floor and the ingest interleaved, round after round, on a shared machine: the ratio is
    # the median of the rounds' ratios, the times the medians of the rounds' times.
    rounds = []
    for _ in range(args.rounds):
        floor_run = measure("bare polars", POLARS, str(day_folder), str(out / "polars.parquet"))
        ingest_run = measure("modelcycle ingest", INGEST, str(raw), str(lake), START.isoformat())
        rounds.append((floor_run, ingest_run))
    polars, ingest = _median_run([r[0] for r in rounds]), _median_run([r[1] for r in rounds])
    ingest_ratio = statistics.median(i.seconds / p.seconds for p, i in rounds)
    # The features and their floor interleaved too (the features partition is rebuilt each time).
    feature_rounds = []
    for _ in range(args.rounds):
        built = measure("features (1 day)", FEATURES, str(lake), START.isoformat())
        feature_rounds.append((_features_floor(lake, START.isoformat(), out), built))
    floor = _median_run([r[0] for r in feature_rounds])
    features = _median_run([r[1] for r in feature_rounds])
    features_ratio = statistics.median(f.seconds / b.seconds for b, f in feature_rounds)
    for offset in range(1, args.train_days):
        day = (START + timedelta(days=offset)).isoformat()
        measure(f"ingest {day}", INGEST, str(raw), str(lake), day)
        measure(f"features {day}", FEATURES, str(lake), day)
    last = (START + timedelta(days=args.train_days - 1)).isoformat()
    train = measure("train", TRAIN, str(lake), str(raw), last)
    conditions.finish()
    verdicts = Verdicts("ingest")
    verdicts.add(
        Target("ingest speed-up over pandas", pandas.seconds / ingest.seconds, 2.0, "×", True)
    )
    verdicts.add(Target("ingest time / bare polars", ingest_ratio, 1.5, "×"))
    verdicts.add(Target("ingest peak memory", ingest.peak_mib, 1024, " MiB", digits=0))
    verdicts.add(Target("features for one day", features.seconds, 10.0, " s", digits=1))
    verdicts.add(Target("features time / bare DuckDB floor", features_ratio, 1.3, "×"))
    verdicts.add(Target("training both models on the window", train.seconds, 180, " s", digits=0))

    rows = [
        ("pandas read_csv + concat + to_parquet", pandas, _ratio(pandas, polars)),
        ("bare polars scan_csv → sink_parquet (anchor)", polars, "1.00×"),
        ("**modelcycle ingest (validated, quarantine, report)**", ingest, f"{ingest_ratio:.2f}×"),
    ]
    feature_rows = [
        ("bare DuckDB: the same aggregates, Parquet to Parquet (floor)", floor, "1.00×"),
        ("**modelcycle features (one day)**", features, f"{features_ratio:.2f}×"),
    ]
    table = "\n".join(
        f"| {name} | {m.seconds:.1f} | {m.peak_mib:,.0f} | {ratio} |" for name, m, ratio in rows
    )
    feature_table = "\n".join(
        f"| {name} | {m.seconds:.1f} | {m.peak_mib:,.0f} | {ratio} |"
        for name, m, ratio in feature_rows
    )
    markdown = f"""## Ingest, features, training (`make bench-ingest`)

One simulated reference-scale day: {args.devices} devices × 100 sensors × 1440 minutes,
{size_gb:.2f} GB of CSV. Measured {machine_line()}; each step in its own process.
{run_line(conditions)}
The bare polars floor and the ingest ran interleaved, {args.rounds} rounds: times are medians
(peak memory the largest), the ingest's ratio is the median of the rounds' ratios
({", ".join(f"{i.seconds / p.seconds:.2f}×" for p, i in rounds)}); the features and their
floor likewise ({", ".join(f"{f.seconds / b.seconds:.2f}×" for b, f in feature_rounds)}).

| step | wall s | peak MiB | time vs bare polars |
|---|---:|---:|---:|
{table}

| features | wall s | peak MiB | time vs floor |
|---|---:|---:|---:|
{feature_table}

Training both models on {args.train_days} days (feature partitions already built, as the daily
job leaves them; labels, time split, LightGBM + IsolationForest fit, ONNX export):
{train.seconds:.1f} s, {train.peak_mib:,.0f} MiB peak.

{verdicts.table()}
"""
    write_section("ingest", markdown)
    print(markdown)
    verdicts.finish(conditions)


if __name__ == "__main__":
    main()
