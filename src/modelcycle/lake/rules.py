"""Row validation as SQL, so the same rules can run on DuckDB here and on Spark for big fleets.

Every row of a day's logs ends in exactly one place: the readings table, or the quarantine with
one reason (the first rule it breaks). Reasons are a short category plus a detail naming the
column or value, so the ingest report can count by category and a person can find the line.
"""

from __future__ import annotations

from datetime import date, timedelta

from modelcycle.lake.schema import (
    DEVICE_COLUMN,
    TIMESTAMP_COLUMN,
    VALUE_MAX,
    VALUE_MIN,
    ReadingsSchema,
)

# Categories, as they appear in the quarantine and the report.
MISSING_TIMESTAMP = "missing timestamp"
DEVICE_MISMATCH = "device_id does not match file"
OUTSIDE_DAY = "timestamp outside the day"
OUT_OF_RANGE = "value out of range"
DUPLICATE = "duplicate reading"
UNPARSEABLE_VALUE = "unparseable value"
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
TOO_FEW_FIELDS = "truncated line"
TOO_MANY_FIELDS = "too many fields"
GARBLED_LINE = "garbled line"
HEADER_LINE_OTHER_COLUMNS = "header line with other columns"

# Lines the parser refuses that are not rows: counted in the report, not quarantined.
REPEATED_HEADER = "header"
BLANK_LINE = "blank"

# Parser error types (DuckDB's reject_errors.error_type) mapped to our categories.
PARSER_ERROR_REASONS = {
    "MISSING COLUMNS": TOO_FEW_FIELDS,
    "TOO MANY COLUMNS": TOO_MANY_FIELDS,
    "UNQUOTED VALUE": GARBLED_LINE,
    "LINE SIZE OVER MAXIMUM": GARBLED_LINE,
    "INVALID UNICODE": GARBLED_LINE,
    "INVALID ENCODING": GARBLED_LINE,
    "INVALID STATE": GARBLED_LINE,
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def first_out_of_range_column(schema: ReadingsSchema) -> str:
    """SQL naming the first sensor whose value is outside the physical range (NaN/inf included)."""
    cases = " ".join(
        f"WHEN NOT ({_quote(s)} BETWEEN {VALUE_MIN} AND {VALUE_MAX}) THEN {_sql_string(s)}"
        for s in schema.sensors
    )
    return f"CASE {cases} END"


def row_checks_sql(source: str, schema: ReadingsSchema, day: date) -> str:
    """Select every row of `source` with `reason` and `detail` (both NULL for a good row).

    `source` must have the schema's columns plus `file_device` (the device id the file name
    declares) and `line_order` (position in the file, so the first of duplicates is kept).
    """
    start = _sql_string(day.isoformat())
    end = _sql_string((day + timedelta(days=1)).isoformat())
    ts, dev = _quote(TIMESTAMP_COLUMN), _quote(DEVICE_COLUMN)
    first_checks = f"""
        CASE
            WHEN {ts} IS NULL THEN '{MISSING_TIMESTAMP}'
            WHEN {dev} IS NULL OR {dev} <> file_device THEN '{DEVICE_MISMATCH}'
            WHEN {ts} < TIMESTAMP {start} OR {ts} >= TIMESTAMP {end} THEN '{OUTSIDE_DAY}'
            WHEN bad_column IS NOT NULL THEN '{OUT_OF_RANGE}'
        END"""
    first_detail = f"""
        CASE
            WHEN {ts} IS NULL THEN NULL
            WHEN {dev} IS NULL OR {dev} <> file_device
                THEN 'device_id ' || coalesce({dev}, 'NULL') || ' in file of ' || file_device
            WHEN {ts} < TIMESTAMP {start} OR {ts} >= TIMESTAMP {end}
                THEN CAST({ts} AS VARCHAR) || ' is not on ' || {start}
            WHEN bad_column IS NOT NULL
                THEN bad_column || ' outside [{VALUE_MIN:g}, {VALUE_MAX:g}]'
        END"""
    return f"""
        WITH ranged AS (
            SELECT *, {first_out_of_range_column(schema)} AS bad_column FROM {source}
        ),
        first_pass AS (
            SELECT *, {first_checks} AS first_reason, {first_detail} AS first_detail FROM ranged
        ),
        ranked AS (
            SELECT *,
                CASE WHEN first_reason IS NULL THEN row_number() OVER (
                    PARTITION BY {dev}, {ts}, first_reason IS NULL ORDER BY line_order
                ) END AS copy_number
            FROM first_pass
        )
        SELECT * EXCLUDE (bad_column, first_reason, first_detail, copy_number),
            CASE WHEN copy_number > 1 THEN '{DUPLICATE}' ELSE first_reason END AS reason,
            CASE WHEN copy_number > 1 THEN 'repeat of ' || CAST({ts} AS VARCHAR)
                 ELSE first_detail END AS detail
        FROM ranked
    """


def raw_line_sql(schema: ReadingsSchema) -> str:
    """The row written back as a log line, for quarantined rows the parser had accepted."""
    ts = f"strftime({_quote(TIMESTAMP_COLUMN)}, '%Y-%m-%d %H:%M:%S')"
    parts = [f"coalesce({ts}, '')", f"coalesce({_quote(DEVICE_COLUMN)}, '')"]
    parts += [f"coalesce(CAST({_quote(s)} AS VARCHAR), '')" for s in schema.sensors]
    return "concat_ws(',', " + ", ".join(parts) + ")"


def _bare_line_sql() -> str:
    """The refused line without spaces, tabs and quotes, to compare with a header."""
    return "regexp_replace(csv_line, '[ \\t\"]', '', 'g')"


def skipped_line_sql(schema: ReadingsSchema) -> str:
    """For a line the parser refused: 'blank', 'header' (the day's, repeated) or NULL (a row)."""
    return f"""CASE
        WHEN regexp_full_match(csv_line, '[ \\t]*') THEN '{BLANK_LINE}'
        WHEN {_bare_line_sql()} = {_sql_string(schema.header)} THEN '{REPEATED_HEADER}'
    END"""


def parser_reason_sql() -> str:
    """Map DuckDB's reject error type (and column) to our category."""
    cases = " ".join(
        f"WHEN error_type = {_sql_string(kind)} THEN {_sql_string(reason)}"
        for kind, reason in PARSER_ERROR_REASONS.items()
    )
    header_start = _sql_string(f"{TIMESTAMP_COLUMN},{DEVICE_COLUMN},")
    return f"""CASE
        WHEN starts_with({_bare_line_sql()}, {header_start}) THEN '{HEADER_LINE_OTHER_COLUMNS}'
        WHEN error_type = 'CAST' AND column_name = '{TIMESTAMP_COLUMN}'
            THEN '{UNPARSEABLE_TIMESTAMP}'
        WHEN error_type = 'CAST' THEN '{UNPARSEABLE_VALUE}'
        {cases}
        ELSE '{GARBLED_LINE}'
    END"""
