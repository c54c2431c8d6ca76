"""One entry point for every statement file: detect its format, parse it
with the matching parser, and refuse what holds no statement."""

from __future__ import annotations

from .camt import parse_camt053
from .common import FORMATS, MAX_BYTES, ParsedStatement, StatementError
from .mt940 import parse_mt940


def detect_format(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if head.startswith(b"<"):
        return "camt053"
    if b":20:" in data[:4000] or head.startswith((b"{1:", b":")):
        return "mt940"
    raise StatementError("not a statement: expected camt.053 XML or SWIFT MT940 text (give --format to say which)")


def parse_statement_file(data: bytes, *, format: str | None = None) -> list[ParsedStatement]:
    if not data or not data.strip():
        raise StatementError("the file is empty")
    if len(data) > MAX_BYTES:
        raise StatementError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    nul = data.find(b"\x00")
    if nul >= 0:  # no statement text holds one, and PostgreSQL text cannot
        raise StatementError("the file contains a NUL byte", line=data.count(b"\n", 0, nul) + 1)
    fmt = format or detect_format(data)
    if fmt not in FORMATS:
        raise StatementError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    statements = parse_camt053(data) if fmt == "camt053" else parse_mt940(data)
    if not statements:
        raise StatementError("the file holds no statement")
    return statements
