"""Data files that operations edit by hand: the network file and the FATF
jurisdiction lists.

- ``source``: TOML parsing that reports syntax errors with line and column,
  and a line locator for tables and keys.
- ``check``: tables and the ``Checker`` that collects every problem with
  its line before anything is applied.
- ``readers``: typed value readers (decimals never from floats, dates,
  times, time zones, URLs, arrays).
- ``recorder``: upserts by natural key with one audit event each.
"""

from .check import INVALID, Bad, Checker, Reader, Table, valid
from .readers import (
    array,
    aware_datetime,
    boolean,
    calendar_date,
    choice,
    clock_time,
    decimal,
    describe,
    integer,
    show,
    text,
    time_zone,
    url,
)
from .recorder import OUTCOMES, Recorder, iter_counts, json_safe
from .source import DataFileError, LineLocator, Problem, toml_parse

__all__ = [
    "INVALID",
    "OUTCOMES",
    "Bad",
    "Checker",
    "DataFileError",
    "LineLocator",
    "Problem",
    "Reader",
    "Recorder",
    "Table",
    "array",
    "aware_datetime",
    "boolean",
    "calendar_date",
    "choice",
    "clock_time",
    "decimal",
    "describe",
    "integer",
    "iter_counts",
    "json_safe",
    "show",
    "text",
    "time_zone",
    "toml_parse",
    "url",
    "valid",
]
