"""The network file (DESIGN section 11): operators, jurisdictions, rails,
assets, wallets, bank accounts, client accounts, the cap, the reserve fund's
opening contribution and marks, from one TOML file.

``network_load`` checks the whole file first: every table's keys and
values (``tables.read_plan``), then references between tables and to the
registry (``references.check_references``). Every problem is reported with
its line, and any problem means nothing is applied. A valid file is applied
in one transaction (``apply.apply_plan``) by natural key, so loading the
same file twice changes nothing.

On an empty database (no operators) the file is applied at once: it sets
the network up. On a database that already holds a network, whatever moves
money or changes who is paid is under four eyes (DESIGN section 12): the
load computes the change set (applying and rolling back), and proposes it
as one approval request (kind ``network_change``) with one
``ChangeProposal`` per changed object, before and after. Approved by a
different ops_approver, the file is applied again in the approval's
transaction and must produce the very change set that was proposed;
otherwise the proposal is stale (``stale_proposal``) and nothing changes.

Once an object exists, an optional key the file omits leaves its value as
it is; an explicit empty value ("") clears it (``tables.Row``).

Table reference (keys beyond DESIGN's example are optional):

- ``[home]``: code, name, jurisdiction, licence.
- ``[[overseas]]``: code, name, jurisdiction, licence; sfc_approval and
  approved_on (both or neither); dvp_policy (receive_first | escrow, default
  receive_first); escrow_custodian (a custodian's name, for escrow DVP);
  limit_hkd; status (active | suspended; left as it is when
  omitted, since it is operational state).
- ``[[jurisdiction]]``: overrides, the keys of registry/data/jurisdictions.toml;
  only the keys given change.
- ``[[rail]]``: code, kind. evm: chain_id, confirmations, rpc_url (optional),
  window_minutes (default 1440). bank: currency, calendars (holidays-library
  codes: "HK" or "FIN:XHKG"), cutoff "HH:MM", timezone (default
  Asia/Hong_Kong), window_minutes (default 1440), weekend (ISO weekdays,
  default [6, 7]: HKD CHATS does not run on Saturdays). manual:
  window_minutes (default 1440).
- ``[[asset]]``: code, kind (crypto | fiat), scale (0 to 18), rail, contract
  (evm rails; omit for the native coin), haircut ("0" to "1", default "0":
  exposure against the cap is receivable x mark x (1 + haircut)).
- ``[[wallet]]``: operator, rail, address, temperature (hot | cold, default
  hot), custodian, lead_time_minutes (cold wallets), designated (default
  false: a designated custodian wallet for the operator's prefunding),
  escrow (default false: an escrow holding wallet at its custodian, where
  an escrow counterparty's batches lock both sides' assets).
- ``[[bank_account]]``: operator, rail (a bank rail), number, bank,
  designated (default false), escrow_custodian (set on an escrow holding
  account: the escrow custodian keeping it).
- ``[[account]]``: operator, ref, client_class (retail | professional,
  default retail), shared_book_opt_in, disclosure_version (needed with an
  opt-in).
- ``[cap]``: total_hkd, warn_at, settle_at, halt_at (defaults 0.70, 0.80,
  1.00; 0 < warn_at <= settle_at <= halt_at <= 1). The total may not exceed
  the reserve fund (its balance, plus the opening contribution the same file
  makes): ``cap_above_fund``, as for a cap change through the API.
- ``[reserve]``: trustee, deed, opening_hkd, bank_account, name.
  ``bank_account`` is the number of the fund's account on trust: one of
  home's bank accounts on a bank rail in HKD, declared as a
  ``[[bank_account]]`` (in this file or before); any other text is an error
  naming the key. Its statements are reconciled with the fund's ledger.
- ``[[mark]]``: asset, price_hkd, as_of (default now), source (default
  "network file").

Amounts are decimal strings (or integers), never TOML floats; HKD amounts
have at most two decimal places.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from controls.datafile import (
    OUTCOMES,
    Checker,
    DataFileError,
    LineLocator,
    Recorder,
    iter_counts,
    json_safe,
    toml_parse,
)
from controls.exceptions import Conflict, InvalidInput
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of, approval_describer, approval_kind, approval_request
from controls.services.changes import changes_describe, changes_serialise, proposals_record
from registry.models import Operator
from registry.selectors import operator_eligibility
from reserves.models import ReserveFund
from reserves.services.cover import reserve_cover_sync
from reserves.services.ledger import cap_within_fund, reserve_fund_balance
from settlement.selectors.exposure import exposure_get
from settlement.services.cycle_requests import cycle_request_if_settling

from .apply import EXPOSURE_KINDS, KINDS, apply_plan
from .references import check_references
from .tables import OPENING, Plan, read_plan

ERROR_CODE = "invalid_network_file"
ACTION_PREFIX = "network"
WHEN_APPLIED = "(when applied)"  # a value taken from the time of loading: a mark's as_of, an opt-in's time

__all__ = ["ERROR_CODE", "DataFileError", "NetworkLoadResult", "network_load"]


@dataclass(slots=True)
class NetworkLoadResult:
    """What a load created, updated and left unchanged, per kind of object;
    on a running network, the change set it proposed (or would propose)."""

    counts: dict[str, dict[str, int]]
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    approval_id: int | None = None

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.counts.values())

    @property
    def created(self) -> int:
        return self.total("created")

    @property
    def updated(self) -> int:
        return self.total("updated")

    @property
    def unchanged(self) -> int:
        return self.total("unchanged")

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    @property
    def proposed(self) -> bool:
        return self.approval_id is not None

    def summary(self) -> str:
        """One line, e.g. ``network loaded: 3 created, 1 updated, 30 unchanged
        (operator: 1 updated; mark: 3 created)``."""
        if self.proposed:
            head = f"network change proposed as approval {self.approval_id}; a different ops_approver must approve it"
        else:
            head = "dry run, rolled back" if self.dry_run else "network loaded"
        if not self.changed:
            return f"{head}: nothing changed ({self.unchanged} unchanged)"
        totals = ", ".join(f"{self.total(outcome)} {outcome}" for outcome in OUTCOMES)
        details = "; ".join(
            f"{kind}: " + ", ".join(f"{counts[o]} {o}" for o in ("created", "updated") if counts[o])
            for kind, counts in iter_counts(self.counts, KINDS)
            if counts["created"] or counts["updated"]
        )
        return f"{head}: {totals} ({details})"

    def as_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            **{outcome: self.total(outcome) for outcome in OUTCOMES},
            "counts": dict(iter_counts(self.counts, KINDS)),
            "warnings": list(self.warnings),
            "proposed": self.proposed,
            "approval_id": self.approval_id,
            "changes": list(self.changes),
        }


@dataclass(slots=True)
class _ChangeRecorder(Recorder):
    """A recorder that also keeps each change as a proposal shows it."""

    changes: list[dict[str, Any]] = field(default_factory=list)

    def audit(self, outcome, obj, *, object_id, before, after) -> None:
        super(_ChangeRecorder, self).audit(outcome, obj, object_id=object_id, before=before, after=after)
        self.changes.append(
            {
                "target": obj._meta.label,
                "object_id": str(obj.pk) if outcome == "updated" else "",
                "natural_key": object_id,
                "operation": "create" if outcome == "created" else "update",
                "before": json_safe(before) if before is not None else None,
                "after": json_safe(after),
            }
        )


def _normalised(value: Any, stamp: str) -> Any:
    """The change set without the time it was computed at, so a proposal and
    its approval compare equal when nothing else differs."""
    if isinstance(value, str):
        return value.replace(stamp, WHEN_APPLIED)
    if isinstance(value, dict):
        return {key: _normalised(item, stamp) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item, stamp) for item in value]
    return value


def _read(text: str) -> tuple[Checker, Plan]:
    data = toml_parse(text, code=ERROR_CODE)
    check = Checker(code=ERROR_CODE, locator=LineLocator(text))
    return check, read_plan(check, data)


def _check(check: Checker, plan: Plan, *, now: datetime) -> None:
    """Every problem of the file, then the cap against the fund (para 17)."""
    check_references(check, plan, now=now)
    check.raise_if_problems()
    if plan.cap is None:
        return
    balance = reserve_fund_balance()
    if plan.reserve is not None:
        fund = ReserveFund.objects.filter(deed=plan.reserve["deed"]).first()
        if fund is None or not fund.entries.filter(reference=OPENING).exists():
            balance += plan.reserve["opening_hkd"]  # the opening contribution this file makes
    line = check.locator.key("cap", None, "total_hkd") if check.locator else None
    where = f'line {line}: [cap] key "total_hkd": ' if line else '[cap] key "total_hkd": '
    cap_within_fund(total_hkd=plan.cap["total_hkd"], balance=Decimal(balance), where=where)


def _apply(text: str, *, actor: str, now: datetime, rollback: bool) -> NetworkLoadResult:
    check, plan = _read(text)
    recorder = _ChangeRecorder(actor=actor, at=now, action_prefix=ACTION_PREFIX)
    try:
        with transaction.atomic():
            _check(check, plan, now=now)
            overseas = apply_plan(plan, recorder, now=now)
            reserve_cover_sync(actor=actor, at=now)  # the fund's opening contribution, if any
            if any(recorder.counts.get(kind, {}).get(o) for kind in EXPOSURE_KINDS for o in ("created", "updated")):
                # a lower cap, a smaller fund or a new mark can cross settle_at
                cycle_request_if_settling(exposure=exposure_get(as_of=now), actor=actor)
            warnings = [
                f"{operator.code} is not an eligible counterparty: {'; '.join(problems)}"
                for operator in overseas
                if (problems := operator_eligibility(operator))
            ]
            if rollback:
                transaction.set_rollback(True)
    except IntegrityError as error:
        # The file was checked against the registry in this transaction, so
        # this is a concurrent writer of the same natural keys.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Conflict(
            "concurrent_change",
            f"the registry changed while the file was loading ({reason}); nothing was applied, load it again",
        ) from None
    changes = _normalised(recorder.changes, now.isoformat())
    return NetworkLoadResult(counts=recorder.counts, dry_run=rollback, warnings=warnings, changes=changes)


def network_load(
    *, text: str, actor: str, dry_run: bool = False, now: datetime | None = None, user: User | None = None
) -> NetworkLoadResult:
    """Check the whole network file, then apply it, or propose it.

    On an empty database (no operators) the file is applied in one
    transaction. On a running network its change set is proposed for
    four-eyes approval by ``user`` (an ops_operator or ops_approver; a load
    that changes nothing proposes nothing); ``approval_id`` says which.
    Raises ``DataFileError`` (an ``InvalidInput``, code
    ``invalid_network_file``) naming the line, table and key of every
    problem, ``Conflict`` (``cap_above_fund``; ``concurrent_change`` when a
    concurrent change wins a race) and, on a running network without a
    ``user``, ``InvalidInput`` ``proposer_required``; nothing is applied
    then. ``dry_run`` applies and rolls back, so the counts and changes say
    what a real load would do. Warnings name overseas operators that are not
    eligible counterparties (circular para 7) as loaded: that is for
    operations to resolve, not an error in the file.
    """
    now = now or timezone.now()
    if not Operator.objects.exists():  # an empty database: the file sets the network up
        return _apply(text, actor=actor, now=now, rollback=dry_run)
    with transaction.atomic():
        result = _apply(text, actor=actor, now=now, rollback=True)
        result.dry_run = dry_run
        if dry_run or not result.changed:
            return result
        if user is None:
            raise InvalidInput(
                "proposer_required",
                "this database already holds a network, so the file's changes need four eyes: "
                "name the ops_operator or ops_approver who proposes them (load_network --user USERNAME), "
                "or see them with --dry-run",
            )
        payload = {
            "file": text,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "loaded_by": actor,
            "counts": dict(iter_counts(result.counts, KINDS)),
            "changes": result.changes,
        }
        approval = approval_request(kind=ApprovalRequest.Kind.NETWORK_CHANGE, payload=payload, user=user, now=now)
        proposals_record(approval=approval, changes=result.changes, actor=actor_of(user), now=now)
    result.approval_id = approval.id
    return result


# --- approving a network change -------------------------------------------------------------


def _network_check(*, payload: dict) -> None:
    text = payload.get("file")
    if not isinstance(text, str):
        raise InvalidInput("invalid_change", "a network change carries the network file")
    check, plan = _read(text)
    with transaction.atomic():
        _check(check, plan, now=timezone.now())


def _difference(proposed: list[dict], current: list[dict]) -> str:
    """The first way the change set differs from the one proposed."""

    def key(change: dict) -> tuple[str, str, str]:
        return change["target"], change["natural_key"], change["operation"]

    asked, now = {key(c): c for c in proposed}, {key(c): c for c in current}
    for k, change in asked.items():
        what = f"{change['operation']} {change['target'].split('.')[-1].lower()} {change['natural_key']}"
        if k not in now:
            return f"{what} no longer changes anything"
        if now[k] != change:
            fields = {**(change.get("before") or {}), **(now[k].get("before") or {})}
            for name in fields:
                was, held = (change.get("before") or {}).get(name), (now[k].get("before") or {}).get(name)
                if was != held:
                    return f"{what}: {name} was {was!r} when proposed, is {held!r} now"
            return f"{what} would now make other changes"
    extra = next(iter(k for k in now if k not in asked))
    return f"{extra[2]} {extra[0].split('.')[-1].lower()} {extra[1]} is a change the proposal did not show"


approval_describer(ApprovalRequest.Kind.NETWORK_CHANGE)(changes_describe)


@approval_kind(ApprovalRequest.Kind.NETWORK_CHANGE, check=_network_check)
def _network_approved(*, payload: dict, request: ApprovalRequest, approver: User, now: datetime) -> dict:
    changes_serialise()
    result = _apply(payload["file"], actor=actor_of(approver), now=now, rollback=False)
    if result.changes != payload.get("changes"):
        difference = _difference(payload["changes"], result.changes)
        raise Conflict(
            "stale_proposal",
            f"the registry changed since this network change was proposed ({difference}); "
            "load the file again to propose its changes against the current values",
        )
    return {outcome: result.total(outcome) for outcome in OUTCOMES} | {"warnings": result.warnings}
