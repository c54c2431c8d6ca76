"""Exposure reads: the running positions valued at the marks, and the same
from a full recompute (the pre-trade check is in ``exposure_check``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import connection

from controls.money import as_str, hkd
from registry.models import Jurisdiction, Operator
from registry.selectors import HKD, operator_eligibility
from settlement.aggregates import sums_by_direction
from settlement.models import CapConfig, Obligation


@dataclass(slots=True)
class CounterpartyExposure:
    operator: str
    exposure_hkd: Decimal  # at replacement prices: mark x (1 + haircut), what the cap checks
    net_hkd: Decimal
    limit_hkd: Decimal | None
    open_obligations: int
    eligible: bool
    at_marks_hkd: Decimal = Decimal("0.00")  # the same receivables at the plain marks
    reserved_hkd: Decimal = Decimal("0.00")  # open reservations of reserving pre-trade checks


@dataclass(slots=True)
class Exposure:
    as_of: datetime
    method: str
    state: str
    reasons: list[str]
    total_hkd: Decimal
    cap_hkd: Decimal | None
    effective_cap_hkd: Decimal
    reserve_available_hkd: Decimal
    utilisation: Decimal | None
    thresholds: dict[str, Decimal]
    by_counterparty: list[CounterpartyExposure] = field(default_factory=list)
    missing_marks: list[str] = field(default_factory=list)
    total_at_marks_hkd: Decimal = Decimal("0.00")
    stale_marks: list[str] = field(default_factory=list)
    reserved_hkd: Decimal = Decimal("0.00")  # counts against the cap beside total_hkd

    def counterparty(self, code: str) -> CounterpartyExposure | None:
        return next((c for c in self.by_counterparty if c.operator == code), None)

    def as_json(self) -> dict:
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "method": self.method,
            "state": self.state,
            "reasons": self.reasons,
            "total_hkd": as_str(
                sum((c.net_hkd for c in self.by_counterparty), Decimal("0.00"))
                if self.method == "net"
                else self.total_hkd
            ),
            "total_at_marks_hkd": as_str(self.total_at_marks_hkd),
            "reserved_hkd": as_str(self.reserved_hkd),
            "stale_marks": self.stale_marks,
            "cap_hkd": as_str(self.cap_hkd),
            "effective_cap_hkd": as_str(self.effective_cap_hkd),
            "reserve_available_hkd": as_str(self.reserve_available_hkd),
            "utilisation": as_str(self.utilisation),
            "thresholds": {k: as_str(v) for k, v in self.thresholds.items()},
            "by_counterparty": [
                {
                    "operator": c.operator,
                    "exposure_hkd": as_str(c.net_hkd if self.method == "net" else c.exposure_hkd),
                    "exposure_at_marks_hkd": as_str(c.at_marks_hkd),
                    "reserved_hkd": as_str(c.reserved_hkd),
                    "limit_hkd": as_str(c.limit_hkd),
                    "open_obligations": c.open_obligations,
                    "eligible": c.eligible,
                }
                for c in self.by_counterparty
            ],
        }


class ExposureState:
    NORMAL = "normal"
    WARNING = "warning"
    SETTLING = "settling"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class ValuedAsset:
    id: int
    code: str
    scale: int
    mark: Decimal | None  # HKD is always 1
    mark_as_of: datetime | None
    haircut: Decimal = Decimal(0)

    def stale(self, *, before: datetime) -> bool:
        """A mark older than its staleness limit (HKD never is)."""
        return self.code != HKD and self.mark_as_of is not None and self.mark_as_of < before

    def haircut_at(self, *, stale_before: datetime) -> Decimal:
        """The haircut to value with: doubled while the mark is stale (fail safe)."""
        return self.haircut * 2 if self.stale(before=stale_before) else self.haircut


def valued_receivable(quantity: Decimal, asset: ValuedAsset, *, haircut: Decimal) -> tuple[Decimal, Decimal]:
    """What ``quantity`` of ``asset`` owed to home is worth: (at the mark, at
    the replacement price mark x (1 + haircut)), unrounded. The one place a
    receivable is valued, for the running positions, the recompute and the
    pre-trade check alike. The asset must have a mark."""
    assert asset.mark is not None
    at_mark = quantity * asset.mark
    return at_mark, at_mark * (1 + haircut)


def stale_before(as_of: datetime) -> datetime:
    return as_of - timedelta(seconds=settings.MARK_STALE_AFTER_SECONDS)


@dataclass(slots=True)
class ExposureInputs:
    """Everything a valuation reads, loaded together."""

    positions: list[tuple]
    assets: dict[int, ValuedAsset]
    operators: list[Operator]  # every operator, with its jurisdiction, by code
    cap: CapConfig | None
    reserve_available: Decimal
    # open carried credits per (counterparty, asset), signed: + home holds the
    # counterparty's asset, - the counterparty holds home's
    credits: dict[tuple[int, int], Decimal]
    reserved: dict[int, Decimal] = field(default_factory=dict)  # open reservations by counterparty id

    def asset(self, code: str) -> ValuedAsset | None:
        return next((a for a in self.assets.values() if a.code == code), None)

    def operator(self, code: str) -> Operator | None:
        return next((o for o in self.operators if o.code == code), None)


_INPUTS_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array(counterparty_id, asset_id, receivable::text, payable::text,
                                             receivable_count, payable_count)), '[]')
     FROM settlement_exposureposition)::text,
  (SELECT coalesce(json_agg(json_build_array(id, code, scale, mark_hkd::text, mark_as_of, haircut::text)), '[]')
     FROM registry_asset)::text,
  (SELECT coalesce(json_agg(json_build_array(o.id, o.code, o.name, o.role, o.status, o.sfc_approval, o.approved_on,
                                             o.limit_hkd::text, o.jurisdiction_id, j.code, j.fatf_member, j.fatf_suspended,
                                             j.fsrb_bodies, j.iosco_aligned, j.call_for_action, j.increased_monitoring)
                            ORDER BY o.code), '[]')
     FROM registry_operator o JOIN registry_jurisdiction j ON j.id = o.jurisdiction_id)::text,
  (SELECT json_build_array(id, total_hkd::text, warn_at::text, settle_at::text, halt_at::text, updated_at)
     FROM settlement_capconfig LIMIT 1)::text,
  (SELECT coalesce((SELECT available_hkd FROM settlement_reservecover LIMIT 1), 0)::text),
  (SELECT coalesce(json_agg(json_build_array(counterparty_id, reserved::text)), '[]')
     FROM (SELECT counterparty_id, sum(amount_hkd) AS reserved FROM settlement_exposurereservation
            WHERE status = 'reserved' AND expires_at > %s GROUP BY counterparty_id) r)::text,
  (SELECT coalesce(json_agg(json_build_array(counterparty_id, asset_id, held::text)), '[]')
     FROM (SELECT counterparty_id, asset_id,
                  sum(CASE WHEN direction = 'inbound' THEN amount ELSE -amount END) AS held
             FROM settlement_carriedcredit WHERE status IN ('open', 'applied')
            GROUP BY counterparty_id, asset_id) c)::text
"""


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def exposure_inputs(*, as_of: datetime) -> ExposureInputs:
    """Everything a valuation needs in one statement: the pre-trade check's hot path."""
    with connection.cursor() as cursor:
        cursor.execute(_INPUTS_SQL, [as_of])
        positions_json, assets_json, operators_json, cap_json, reserve_available, reserved_json, credits_json = (
            cursor.fetchone()
        )
    positions = [(cp, asset, Decimal(r), Decimal(p), rc, pc) for cp, asset, r, p, rc, pc in json.loads(positions_json)]
    assets = {}
    for asset_id, code, scale, mark, mark_as_of, haircut in json.loads(assets_json):
        assets[asset_id] = ValuedAsset(
            asset_id, code, scale, Decimal(1) if code == HKD else _dec(mark), _when(mark_as_of), Decimal(haircut)
        )
    operators = []
    for row in json.loads(operators_json):
        (
            op_id,
            code,
            name,
            role,
            status,
            sfc_approval,
            approved_on,
            limit,
            j_id,
            j_code,
            fatf,
            suspended,
            fsrb,
            iosco,
            black,
            grey,
        ) = row
        jurisdiction = Jurisdiction(
            id=j_id,
            code=j_code,
            fatf_member=fatf,
            fatf_suspended=suspended,
            fsrb_bodies=fsrb,
            iosco_aligned=iosco,
            call_for_action=black,
            increased_monitoring=grey,
        )
        operators.append(
            Operator(
                id=op_id,
                code=code,
                name=name,
                role=role,
                status=status,
                sfc_approval=sfc_approval,
                approved_on=date.fromisoformat(approved_on) if approved_on else None,
                limit_hkd=_dec(limit),
                jurisdiction=jurisdiction,
            )
        )
    cap = None
    if cap_json is not None:
        cap_id, total, warn, settle, halt, updated = json.loads(cap_json)
        cap = CapConfig(
            id=cap_id,
            total_hkd=Decimal(total),
            warn_at=Decimal(warn),
            settle_at=Decimal(settle),
            halt_at=Decimal(halt),
            updated_at=datetime.fromisoformat(updated),
        )
    reserved = {cp: Decimal(amount) for cp, amount in json.loads(reserved_json)}
    credits = {(cp, asset): Decimal(held) for cp, asset, held in json.loads(credits_json)}
    return ExposureInputs(positions, assets, operators, cap, Decimal(reserve_available), credits, reserved)


def exposure_get(*, as_of: datetime, method: str = "gross") -> Exposure:
    """Value the running positions at the current marks: the figure the cap checks."""
    inputs = exposure_inputs(as_of=as_of)
    return _value(inputs, inputs.positions, as_of=as_of, method=method)


def exposure_recompute_positions() -> dict[tuple[int, int], tuple[Decimal, Decimal, int, int]]:
    """The same positions derived from the unsettled obligations, in one aggregate."""
    unsettled = Obligation.objects.unsettled()
    return sums_by_direction(unsettled, ("counterparty_id", "asset_id"))


def exposure_recompute(*, as_of: datetime, method: str = "gross") -> Exposure:
    positions = [(cp, asset, *values) for (cp, asset), values in exposure_recompute_positions().items()]
    return _value(exposure_inputs(as_of=as_of), positions, as_of=as_of, method=method)


def _with_credits(positions: list[tuple], credits: dict[tuple[int, int], Decimal]) -> list[tuple]:
    """The positions, plus an empty one for each credit without one."""
    have = {(cp_id, asset_id) for cp_id, asset_id, *_ in positions}
    extra = [
        (cp_id, asset_id, Decimal(0), Decimal(0), 0, 0) for cp_id, asset_id in credits if (cp_id, asset_id) not in have
    ]
    return [*positions, *extra]


def _value(inputs: ExposureInputs, positions: list[tuple], *, as_of: datetime, method: str) -> Exposure:
    counterparties = [o for o in inputs.operators if o.role == Operator.Role.OVERSEAS]
    cap = inputs.cap
    thresholds = (
        {"warn_at": cap.warn_at, "settle_at": cap.settle_at, "halt_at": cap.halt_at}
        if cap
        else dict(settings.DEFAULT_THRESHOLDS)
    )
    reserve = inputs.reserve_available
    cap_hkd = cap.total_hkd if cap else None
    effective_cap = max(min(cap_hkd, reserve), Decimal(0)) if cap_hkd is not None else Decimal(0)

    gross: dict[int, Decimal] = {}
    at_marks: dict[int, Decimal] = {}
    owed_by_home: dict[int, Decimal] = {}
    counts: dict[int, int] = {}
    missing: set[str] = set()
    stale: set[str] = set()
    cutoff = stale_before(as_of)
    for cp_id, asset_id, owed, payable, receivable_count, payable_count in _with_credits(positions, inputs.credits):
        # the credit term: what home already holds of the counterparty's
        # asset (a carried credit) is no longer at risk; what it holds of
        # home's is
        receivable = max(owed - inputs.credits.get((cp_id, asset_id), Decimal(0)), Decimal(0))
        counts[cp_id] = counts.get(cp_id, 0) + receivable_count + payable_count
        valued = inputs.assets[asset_id]
        if valued.mark is None:
            if receivable > 0:
                missing.add(valued.code)
            continue
        if receivable > 0 and valued.stale(before=cutoff):
            stale.add(valued.code)
        plain, replacement = valued_receivable(receivable, valued, haircut=valued.haircut_at(stale_before=cutoff))
        at_marks[cp_id] = at_marks.get(cp_id, Decimal(0)) + plain
        gross[cp_id] = gross.get(cp_id, Decimal(0)) + replacement
        owed_by_home[cp_id] = owed_by_home.get(cp_id, Decimal(0)) + payable * valued.mark

    reasons: list[str] = []
    by_cp = []
    total = total_at_marks = total_reserved = Decimal("0.00")
    for op in counterparties:
        exposure = hkd(gross.get(op.id, Decimal(0)))
        plain = hkd(at_marks.get(op.id, Decimal(0)))
        reserved = inputs.reserved.get(op.id, Decimal("0.00"))
        net = max(hkd(exposure - owed_by_home.get(op.id, Decimal(0))), Decimal("0.00"))
        total += exposure
        total_at_marks += plain
        total_reserved += reserved
        problems = operator_eligibility(op)
        by_cp.append(
            CounterpartyExposure(
                op.code, exposure, net, op.limit_hkd, counts.get(op.id, 0), not problems, plain, reserved
            )
        )
        if op.limit_hkd is not None and exposure > 0 and exposure >= op.limit_hkd:
            reasons.append(
                f"{op.code} exposure {as_str(exposure)} HKD is at or above its limit {as_str(op.limit_hkd)} HKD"
            )

    # States compare the exact ratio; the figure shown is rounded down, so a
    # display of 0.8000 never sits next to a "warning" state.
    # open reservations count against the cap like the exposure they stand for
    exact = (total + total_reserved) / effective_cap if effective_cap > 0 else None
    utilisation = exact.quantize(Decimal("0.0001"), rounding=ROUND_FLOOR) if exact is not None else None
    state = ExposureState.NORMAL
    if cap is None:
        state = ExposureState.HALTED
        reasons.insert(0, "no cap configured")
    elif exact is None:
        state = ExposureState.HALTED
        reasons.insert(0, "effective cap is zero: no reserve fund balance or a zero cap")
    else:
        if exact >= thresholds["halt_at"]:
            state = ExposureState.HALTED
            reasons.insert(0, f"utilisation {utilisation} at or above halt threshold {thresholds['halt_at']}")
        elif exact >= thresholds["settle_at"]:
            state = ExposureState.SETTLING
            reasons.insert(0, f"utilisation {utilisation} at or above settle threshold {thresholds['settle_at']}")
        elif exact >= thresholds["warn_at"]:
            state = ExposureState.WARNING
            reasons.insert(0, f"utilisation {utilisation} at or above warning threshold {thresholds['warn_at']}")
    if missing:
        state = ExposureState.HALTED
        reasons.insert(0, "no mark for " + ", ".join(sorted(missing)) + ": unsettled receivables cannot be valued")
    for code in sorted(stale):
        reasons.append(
            f"mark for {code} is stale (older than {settings.MARK_STALE_AFTER_SECONDS} s): new exposure in {code} "
            "is denied and what is owed in it is valued with a doubled haircut until a fresh mark arrives"
        )

    return Exposure(
        as_of=as_of,
        method=method,
        state=state,
        reasons=reasons,
        total_hkd=total,
        cap_hkd=cap_hkd,
        effective_cap_hkd=hkd(effective_cap),
        reserve_available_hkd=hkd(reserve),
        utilisation=utilisation,
        thresholds=thresholds,
        by_counterparty=by_cp,
        missing_marks=sorted(missing),
        total_at_marks_hkd=total_at_marks,
        stale_marks=sorted(stale),
        reserved_hkd=total_reserved,
    )
