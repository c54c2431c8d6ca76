"""The FATF list facts per jurisdiction (circular para 7), kept as data.

``registry/data/jurisdictions.toml`` ships the lists with the date they
were taken; ``jurisdictions_sync`` upserts them (``load_jurisdictions``
when FATF changes its lists, three times a year). The network file may
override single facts with its own ``[[jurisdiction]]`` tables, read by
``jurisdiction_read`` here so both files accept the same keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from controls.datafile import (
    INVALID,
    Checker,
    LineLocator,
    Recorder,
    Table,
    array,
    boolean,
    calendar_date,
    choice,
    text,
)
from controls.exceptions import InvalidInput
from controls.services.changes import Operation, change_describe, changes_propose
from registry.models import Jurisdiction, Operator

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "jurisdictions.toml"
ERROR_CODE = "invalid_jurisdictions_file"

FSRB_BODIES = ("APG", "CFATF", "EAG", "ESAAMLG", "GABAC", "GAFILAT", "GIABA", "MENAFATF", "MONEYVAL")
FLAGS = ("fatf_member", "fatf_suspended", "iosco_aligned", "call_for_action", "increased_monitoring")
KEYS = ("code", "name", *FLAGS, "fsrb_bodies", "lists_as_of")

ISO_CODE = text(max_length=2, pattern=re.compile(r"[A-Z]{2}"), hint='an ISO 3166-1 alpha-2 code such as "SG"')


def jurisdiction_read(check: Checker, table: Table, *, partial: bool) -> tuple[str, dict[str, Any]]:
    """The code and facts of one ``[[jurisdiction]]`` table.

    ``partial``: only the keys present (an override in the network file);
    otherwise the table is the whole truth and missing facts are false.
    Problems go to ``check``; their values come back as ``INVALID``.
    """
    check.only(table, KEYS)
    code = check.get(table, "code", ISO_CODE, required=True)
    readers = {
        "name": (text(max_length=100, blank=True), ""),
        **{flag: (boolean, False) for flag in FLAGS},
        "fsrb_bodies": (array(choice(*FSRB_BODIES)), []),
    }
    values = {
        key: check.get(table, key, reader, default=default)
        for key, (reader, default) in readers.items()
        if not partial or key in table.data
    }
    if "lists_as_of" in table.data:
        values["lists_as_of"] = check.get(table, "lists_as_of", calendar_date)
    if values.get("fatf_suspended") is True and values.get("fatf_member") is False:
        check.problem(table, "fatf_suspended", "a suspended membership needs fatf_member = true")
    return code, values


def jurisdictions_sync(
    *,
    data: Mapping[str, Any],
    actor: str,
    locator: LineLocator | None = None,
    now: datetime | None = None,
    user: User | None = None,
) -> dict[str, Any]:
    """Upsert the jurisdictions of a data file shaped like the shipped one:
    ``as_of`` and one ``[[jurisdiction]]`` table per code.

    All or nothing: any problem raises ``DataFileError`` (an ``InvalidInput``)
    naming the table and key (and line, given the ``locator`` of the source
    text) before anything is written. Jurisdictions missing from the file
    are left as they are. One audit event per created or changed row.

    Eligibility follows from these facts (circular para 7), so once operators
    exist the changes are proposed, by ``user``, as one approval a different
    ops_approver approves (DESIGN section 12; ``approval_id`` in the answer).
    """
    now = now or timezone.now()
    check = Checker(code=ERROR_CODE, locator=locator)
    root = Table(None, None, dict(data))
    check.only(root, ("as_of", "jurisdiction"))
    as_of = check.get(root, "as_of", calendar_date, required=True)
    tables = check.tables(data, "jurisdiction", array=True)
    if not tables and "jurisdiction" not in data:
        check.problem(None, None, "no [[jurisdiction]] tables")
    rows: dict[str, dict[str, Any]] = {}
    for table in tables:
        code, values = jurisdiction_read(check, table, partial=False)
        if code is INVALID:
            continue
        if code in rows:
            check.problem(table, "code", f"{code} is listed more than once")
        rows[code] = values
    check.raise_if_problems()
    for values in rows.values():
        values.setdefault("lists_as_of", as_of)
    if Operator.objects.exists():
        return _propose(rows, as_of=as_of, user=user, now=now)

    recorder = Recorder(actor=actor, at=now, action_prefix="jurisdictions")
    with transaction.atomic():
        for code, values in rows.items():
            recorder.upsert("jurisdiction", Jurisdiction, lookup={"code": code}, values=values, object_id=code)
    return {"as_of": as_of.isoformat(), "jurisdictions": len(rows), **recorder.totals()}


def _propose(rows: dict[str, dict[str, Any]], *, as_of, user: User | None, now: datetime) -> dict[str, Any]:
    existing = Jurisdiction.objects.in_bulk(list(rows), field_name="code")
    changes, counts = [], {"created": 0, "updated": 0, "unchanged": 0}
    for code, values in rows.items():
        current = existing.get(code)
        proposed = Jurisdiction(code=code) if current is None else Jurisdiction.objects.get(pk=current.pk)
        for name, value in values.items():
            setattr(proposed, name, value)
        if current is not None and all(getattr(current, name) == value for name, value in values.items()):
            counts["unchanged"] += 1
            continue
        operation = Operation.CREATE if current is None else Operation.UPDATE
        changes.append(change_describe(proposed=proposed, operation=operation))
        counts["created" if current is None else "updated"] += 1
    approval_id = None
    if changes:
        if user is None:
            raise InvalidInput(
                "proposer_required",
                "operators are registered, so changes to their jurisdictions' facts need four eyes: "
                "name the ops_operator or ops_approver who proposes them (load_jurisdictions --user USERNAME)",
            )
        approval_id = changes_propose(changes=changes, user=user, now=now).id
    return {"as_of": as_of.isoformat(), "jurisdictions": len(rows), **counts, "approval_id": approval_id}
