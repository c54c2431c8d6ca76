"""Bank statement parsers: SWIFT MT940 (with the ``mt-940`` library) and ISO
20022 camt.053 (with ``pycamt``), into one shape. Pure: no database. A file
that is wrong anywhere raises ``StatementError`` naming the line (and the
tag or element), and nothing of it is used."""

from .common import ParsedEntry, ParsedStatement, StatementError
from .parse import detect_format, parse_statement_file

__all__ = ["ParsedEntry", "ParsedStatement", "StatementError", "detect_format", "parse_statement_file"]
