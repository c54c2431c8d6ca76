"""Reads of the registry: who is eligible, and the snapshot the intake checks against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from . import calendars
from .models import Asset, Jurisdiction, Operator, Rail

HKD = "HKD"  # the valuation currency: its mark is always 1


def jurisdiction_problems(j: Jurisdiction) -> list[str]:
    problems = []
    fatf = j.fatf_member and not j.fatf_suspended
    if not fatf and not j.fsrb_bodies:
        suspended = " (membership suspended)" if j.fatf_member else ""
        problems.append(f"jurisdiction {j.code} is not a FATF{suspended} or FATF-style regional body member")
    if not j.iosco_aligned:
        problems.append(f"jurisdiction {j.code} is not recorded as having IOSCO-aligned regulation")
    if j.call_for_action:
        problems.append(f"jurisdiction {j.code} is on the FATF call-for-action list")
    if j.increased_monitoring:
        problems.append(f"jurisdiction {j.code} is under FATF increased monitoring")
    return problems


def operator_eligibility(operator: Operator) -> list[str]:
    """Why an overseas operator may not be a counterparty; empty when eligible."""
    if operator.is_home:
        return []
    problems = []
    if operator.status != Operator.Status.ACTIVE:
        problems.append(f"operator {operator.code} is {operator.status}")
    if not operator.sfc_approval or operator.approved_on is None:
        problems.append(f"operator {operator.code} has no SFC approval reference and date")
    problems.extend(jurisdiction_problems(operator.jurisdiction))
    return problems


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    id: int
    code: str
    is_home: bool
    status: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AssetInfo:
    id: int
    code: str
    scale: int


@dataclass(frozen=True, slots=True)
class Registry:
    home: OperatorInfo | None
    operators: dict[str, OperatorInfo]
    assets: dict[str, AssetInfo]


def registry_load() -> Registry:
    operators = {}
    home = None
    for op in Operator.objects.select_related("jurisdiction"):
        info = OperatorInfo(op.id, op.code, op.is_home, op.status, tuple(operator_eligibility(op)))
        operators[op.code] = info
        if op.is_home:
            home = info
    assets = {a.code: AssetInfo(a.id, a.code, a.scale) for a in Asset.objects.only("id", "code", "scale")}
    return Registry(home=home, operators=operators, assets=assets)


# --- haircuts: the price move over the settlement horizon (DESIGN section 5) ----------------


@dataclass(frozen=True, slots=True)
class HaircutSuggestion:
    """The haircut an asset's marks history suggests, beside its setting."""

    asset: str
    setting: Decimal
    suggested: Decimal | None  # None: too little history to say
    horizon: timedelta
    samples: int
    note: str

    def as_json(self) -> dict:
        return {
            "asset": self.asset,
            "haircut": format(self.setting, "f"),
            "suggested": None if self.suggested is None else format(self.suggested, "f"),
            "horizon_hours": format((Decimal(self.horizon.total_seconds()) / 3600).quantize(Decimal("0.01")), "f"),
            "samples": self.samples,
            "note": self.note,
        }


def rail_horizon(rail: Rail, *, as_of: datetime, days: int) -> timedelta:
    """The longest time, over the coming ``days``, from a trade to its leg's
    deadline on ``rail``: a trade just at the cut-off before the longest
    closure (a weekend, a holiday stretch) waits for the cut-off after it.
    A rail without a cut-off settles within its window."""
    candidates = [as_of]
    if rail.cutoff is not None:
        zone = ZoneInfo(rail.timezone)
        today = as_of.astimezone(zone).date()
        days_before = [today] + [
            first - timedelta(days=1)
            for first, _ in calendars.closures(rail, today, today + timedelta(days=days))
            if first > today
        ]
        candidates += [datetime.combine(d, rail.cutoff, zone).astimezone(UTC) for d in days_before]
    return max(calendars.leg_deadline(rail, t) - t for t in candidates)


def asset_horizon(asset: Asset, *, as_of: datetime) -> timedelta:
    """How long home may wait for ``asset`` after a trade: DVP is per trade,
    so its leg waits for the other leg's rail too, and on a shared book the
    other leg may settle on any registered asset's rail. The longest of them."""
    rails = {asset.rail_id: asset.rail} | {a.rail_id: a.rail for a in Asset.objects.select_related("rail")}
    days = settings.HAIRCUT_HORIZON_LOOKAHEAD_DAYS
    return max(rail_horizon(rail, as_of=as_of, days=days) for rail in rails.values())


_MOVE_SQL = """
SELECT percentile_disc(%(quantile)s) WITHIN GROUP (ORDER BY later.price_hkd / m.price_hkd - 1), count(*)
  FROM registry_mark m
  CROSS JOIN LATERAL (
    SELECT l.price_hkd FROM registry_mark l
     WHERE l.asset_id = m.asset_id AND l.as_of <= m.as_of + make_interval(secs => %(horizon)s)
     ORDER BY l.as_of DESC, l.id DESC LIMIT 1
  ) later
 WHERE m.asset_id = %(asset)s
   AND m.as_of >= %(since)s
   AND m.as_of + make_interval(secs => %(horizon)s) <= %(until)s
"""


def haircut_suggest(asset: Asset, *, as_of: datetime) -> HaircutSuggestion:
    """The rise in ``asset``'s HKD price over its settlement horizon that the
    marks history exceeded only 1 % of the time (every mark in the lookback
    is a start; the price a horizon later is the latest mark by then). Only
    rises count: home, owed the asset by a failed counterparty, must buy it
    back. Rounded up to four places; at most 1."""
    horizon = asset_horizon(asset, as_of=as_of)
    setting = asset.haircut
    if asset.code == HKD:
        return HaircutSuggestion(asset.code, setting, Decimal(0), horizon, 0, "the valuation currency never moves")
    since = as_of - timedelta(days=settings.HAIRCUT_HISTORY_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            _MOVE_SQL,
            {
                "quantile": settings.HAIRCUT_QUANTILE,
                "horizon": horizon.total_seconds(),
                "asset": asset.id,
                "since": since,
                "until": as_of,
            },
        )
        move, samples = cursor.fetchone()
    minimum = settings.HAIRCUT_MIN_SAMPLES
    if samples < minimum:
        note = f"{samples} windows of {horizon} in the last {settings.HAIRCUT_HISTORY_DAYS} days; {minimum} needed"
        return HaircutSuggestion(asset.code, setting, None, horizon, samples, note)
    suggested = min(max(Decimal(move), Decimal(0)).quantize(Decimal("0.0001"), rounding=ROUND_CEILING), Decimal(1))
    note = (
        f"{settings.HAIRCUT_QUANTILE} quantile of the rise over {horizon} in {samples} windows "
        f"over the last {settings.HAIRCUT_HISTORY_DAYS} days"
    )
    return HaircutSuggestion(asset.code, setting, suggested, horizon, samples, note)
