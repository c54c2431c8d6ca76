"""The network file (DESIGN section 11): operators, jurisdictions, rails,
assets, wallets, bank accounts, client accounts, the cap, the reserve fund's
opening contribution and marks, from one TOML file.

``network_load`` checks the whole file first: every table's keys and
values (``tables.read_plan``), then references between tables and to the
registry (``references.check_references``). Every problem is reported with
its line, and any problem means nothing is applied. A valid file is applied
in one transaction (``apply.apply_plan``) by natural key, so loading the
same file twice changes nothing.

Table reference (keys beyond DESIGN's example are optional):

- ``[home]``: code, name, jurisdiction, licence.
- ``[[overseas]]``: code, name, jurisdiction, licence; sfc_approval and
  approved_on (both or neither); dvp_policy (receive_first | escrow, default
  receive_first); escrow_custodian (a custodian's name, for escrow DVP);
  limit_hkd; status (active | suspended; left as it is when
  omitted, since it is operational state).
- ``[[jurisdiction]]``: overrides, the keys of settlement/data/jurisdictions.toml;
  only the keys given change.
- ``[[rail]]``: code, kind. evm: chain_id, confirmations, rpc_url (optional),
  window_minutes (default 1440). bank: currency, calendars (holidays-library
  codes: "HK" or "FIN:XHKG"), cutoff "HH:MM", timezone (default
  Asia/Hong_Kong), window_minutes (default 1440), weekend (ISO weekdays,
  default [6, 7]: HKD CHATS does not run on Saturdays). manual:
  window_minutes (default 1440).
- ``[[asset]]``: code, kind (crypto | fiat), scale (0 to 18), rail, contract
  (evm rails; omit for the native coin).
- ``[[wallet]]``: operator, rail, address, temperature (hot | cold, default
  hot), custodian, lead_time_minutes (cold wallets), designated (default
  false: a designated custodian wallet for the operator's prefunding).
- ``[[bank_account]]``: operator, rail (a bank rail), number, bank,
  designated (default false).
- ``[[account]]``: operator, ref, client_class (retail | professional,
  default retail), shared_book_opt_in, disclosure_version (needed with an
  opt-in).
- ``[cap]``: total_hkd, warn_at, settle_at, halt_at (defaults 0.70, 0.80,
  1.00; 0 < warn_at <= settle_at <= halt_at <= 1).
- ``[reserve]``: trustee, deed, opening_hkd, bank_account, name.
- ``[[mark]]``: asset, price_hkd, as_of (default now), source (default
  "network file").

Amounts are decimal strings (or integers), never TOML floats; HKD amounts
have at most two decimal places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from controls.datafile import OUTCOMES, Checker, DataFileError, LineLocator, Recorder, iter_counts, toml_parse
from controls.exceptions import Conflict
from registry.selectors import operator_eligibility
from reserves.services.cover import reserve_cover_sync
from settlement.selectors.exposure import exposure_get
from settlement.services.cycle_requests import cycle_request_if_settling

from .apply import EXPOSURE_KINDS, KINDS, apply_plan
from .references import check_references
from .tables import read_plan

ERROR_CODE = "invalid_network_file"
ACTION_PREFIX = "network"

__all__ = ["ERROR_CODE", "DataFileError", "NetworkLoadResult", "network_load"]


@dataclass(slots=True)
class NetworkLoadResult:
    """What a load created, updated and left unchanged, per kind of object."""

    counts: dict[str, dict[str, int]]
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

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

    def summary(self) -> str:
        """One line, e.g. ``network loaded: 3 created, 1 updated, 30 unchanged
        (operator: 1 updated; mark: 3 created)``."""
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
        }


def network_load(*, text: str, actor: str, dry_run: bool = False, now: datetime | None = None) -> NetworkLoadResult:
    """Check the whole network file, then apply it in one transaction.

    Raises ``DataFileError`` (an ``InvalidInput``, code
    ``invalid_network_file``) naming the line, table and key of every
    problem, or ``Conflict`` when a concurrent change wins a race; nothing
    is applied then. ``dry_run`` applies and rolls back, so the counts say
    what a real load would do. Warnings name overseas operators that are not
    eligible counterparties (circular para 7) as loaded: that is for
    operations to resolve, not an error in the file.
    """
    now = now or timezone.now()
    data = toml_parse(text, code=ERROR_CODE)
    check = Checker(code=ERROR_CODE, locator=LineLocator(text))
    plan = read_plan(check, data)
    recorder = Recorder(actor=actor, at=now, action_prefix=ACTION_PREFIX)
    try:
        with transaction.atomic():
            check_references(check, plan, now=now)
            check.raise_if_problems()
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
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError as error:
        # The file was checked against the registry in this transaction, so
        # this is a concurrent writer of the same natural keys.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Conflict(
            "concurrent_change",
            f"the registry changed while the file was loading ({reason}); nothing was applied, load it again",
        ) from None
    return NetworkLoadResult(counts=recorder.counts, dry_run=dry_run, warnings=warnings)
