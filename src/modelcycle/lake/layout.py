"""Where each table of the lake lives, relative to the lake root, and each file of the raw area,
relative to the raw root: every path the code reads or writes is built here.

Each day's readings are one Parquet object, so a partition is committed by a single atomic
publish on every backend (rename locally, one completed upload on S3/GCS): readers see the whole
day or nothing, and re-ingesting a day replaces it instead of adding duplicates.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from modelcycle.errors import InvalidInputError

READINGS_FILE = "part-0.parquet"
FLEET_FILE = "devices.csv"  # raw area: the fleet register
LEDGER_FILE = "maintenance.csv"  # raw area: the maintenance ledger (labels)
TRUTH_FILE = "truth/injected.csv"  # raw area: every injected anomaly and fault (simulator only)
_DATE_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str, *, option: str = "--date") -> date:
    """A YYYY-MM-DD day, or a one-line error naming the option."""
    if not _DATE_FORM.match(text):
        raise InvalidInputError(f"{option}: {text!r} is not a date in YYYY-MM-DD form")
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as error:
        raise InvalidInputError(f"{option}: {text!r} is not a valid date ({error})") from error


def readings_partition(day: date) -> str:
    return f"readings/date={day.isoformat()}/{READINGS_FILE}"


def features_partition(day: date) -> str:
    return f"features/date={day.isoformat()}/{READINGS_FILE}"


def features_folder(day: date) -> str:
    return f"features/date={day.isoformat()}"


def quarantine_rows(day: date) -> str:
    return f"quarantine/date={day.isoformat()}/rows.parquet"


def quarantine_files(day: date) -> str:
    return f"quarantine/date={day.isoformat()}/files.parquet"


def ingest_report(day: date) -> str:
    return f"reports/ingest/date={day.isoformat()}.json"


def raw_day_folder(day: date) -> str:
    return day.isoformat()


def raw_device_log(day: date, device: str) -> str:
    return f"{raw_day_folder(day)}/{device}.csv"


def raw_device_logs_glob(day: str = "*") -> str:
    """The plain device logs of a day (`day` as YYYY-MM-DD text), or of every day."""
    return f"{day}/device-*.csv"


def scores_partition(day: date, model: str) -> str:
    return f"scores/date={day.isoformat()}/{model}.parquet"


def predictions_glob(day: date) -> str:
    return f"predictions/date={day.isoformat()}/*.parquet"


def predictions_part(day: str, part_id: str) -> str:
    """`day` as the YYYY-MM-DD text the prediction log already holds."""
    return f"predictions/date={day}/part-{part_id}.parquet"


def shadow_part(day: str, part_id: str) -> str:
    """The challenger's shadow predictions beside the champion's; `day` as in `predictions_part`."""
    return f"shadow/date={day}/part-{part_id}.parquet"


def shadow_glob() -> str:
    return "shadow/date=*/*.parquet"
