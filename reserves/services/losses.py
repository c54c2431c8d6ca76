"""What home's clients lose if a counterparty fails (circular para 16): the
one computation behind both the default close-out and the live cover-1
figure, so "loss if it defaulted now" is what a default at the same marks
would assess.

Per trade with something owed to home:

    loss = value of what the client was owed by the counterparty
         - value of what home retained of the same trade (the client's own
           consideration that home never delivered), floored at zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from registry.models import Operator
from registry.selectors import HKD
from settlement.models import Obligation
from settlement.selectors.exposure import exposure_inputs, stale_before, valued_receivable

from ..models import ClaimLine

CENT = Decimal("0.01")


def _hkd(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def losses_by_client(
    *, obligations: Iterable[Obligation], marks: dict[int, Decimal], home_id: int
) -> dict[str, list[ClaimLine]]:
    """Each home client's working, per trade, as unsaved claim lines (with
    ``trade`` and ``asset`` loaded on the obligations), in client order."""
    by_trade: dict[int, dict[str, Obligation]] = defaultdict(dict)
    for o in obligations:
        by_trade[o.trade_id][o.direction] = o
    lines: dict[str, list[ClaimLine]] = defaultdict(list)
    for trade_pk in sorted(by_trade):
        pair = by_trade[trade_pk]
        owed = pair.get(Obligation.Direction.INBOUND)
        if owed is None:
            continue  # nothing was owed to home on this trade
        trade = owed.trade
        client = trade.buy_account if trade.buy_operator_id == home_id else trade.sell_account
        kept = pair.get(Obligation.Direction.OUTBOUND)
        owed_hkd = _hkd(owed.amount * marks[owed.asset_id])
        retained_hkd = _hkd(kept.amount * marks[kept.asset_id]) if kept else Decimal("0.00")
        lines[client].append(
            ClaimLine(
                trade=trade,
                owed_asset=owed.asset.code,
                owed_amount=owed.amount,
                owed_hkd=owed_hkd,
                retained_asset=kept.asset.code if kept else "",
                retained_amount=kept.amount if kept else Decimal(0),
                retained_hkd=retained_hkd,
                loss_hkd=max(owed_hkd - retained_hkd, Decimal("0.00")),
            )
        )
    return dict(sorted(lines.items()))


def client_loss(lines: list[ClaimLine]) -> Decimal:
    return sum((line.loss_hkd for line in lines), Decimal("0.00"))


# --- cover-1: the loss if each counterparty defaulted now -------------------------


def stressed_marks(*, as_of: datetime) -> dict[int, Decimal]:
    """Each asset's replacement price: mark x (1 + haircut), the haircut
    doubled while the mark is stale; HKD is 1. Assets without a mark are
    left out (the counterparty owing one cannot be valued)."""
    inputs = exposure_inputs(as_of=as_of)
    cutoff = stale_before(as_of)
    marks = {}
    for asset in inputs.assets.values():
        if asset.code == HKD:
            marks[asset.id] = Decimal(1)
        elif asset.mark is not None:
            marks[asset.id] = valued_receivable(Decimal(1), asset, haircut=asset.haircut_at(stale_before=cutoff))[1]
    return marks


@dataclass(slots=True)
class LossIfDefault:
    operator: str
    loss_hkd: Decimal | None  # None: an asset it owes has no mark
    clients: dict[str, Decimal] = field(default_factory=dict)
    unvalued_assets: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "operator": self.operator,
            "loss_hkd": None if self.loss_hkd is None else format(self.loss_hkd, "f"),
            "clients": len(self.clients),
            "unvalued_assets": self.unvalued_assets,
        }


def loss_if_default(*, operator: Operator, marks: dict[int, Decimal], home_id: int) -> LossIfDefault:
    """The claims a default of ``operator`` at ``marks`` would assess, summed."""
    unsettled = list(
        Obligation.objects.unsettled()
        .filter(counterparty=operator)
        .select_related("trade", "asset")
        .order_by("trade_id", "id")
    )
    missing = sorted({o.asset.code for o in unsettled if o.asset_id not in marks})
    if missing:
        return LossIfDefault(operator.code, None, unvalued_assets=missing)
    by_client = losses_by_client(obligations=unsettled, marks=marks, home_id=home_id)
    clients = {c: loss for c, lines in by_client.items() if (loss := client_loss(lines)) > 0}
    return LossIfDefault(operator.code, sum(clients.values(), Decimal("0.00")), clients)


def losses_if_default(*, as_of: datetime) -> list[LossIfDefault]:
    """Cover-1 (PFMI principle 4): for every counterparty not already in
    default, the loss home's clients would suffer if it defaulted now, at
    stressed marks, largest first."""
    home = Operator.objects.filter(role=Operator.Role.HOME).first()
    if home is None:
        return []
    marks = stressed_marks(as_of=as_of)
    counterparties = Operator.objects.filter(role=Operator.Role.OVERSEAS).exclude(status=Operator.Status.DEFAULTED)
    results = [loss_if_default(operator=o, marks=marks, home_id=home.id) for o in counterparties.order_by("code")]
    return sorted(results, key=lambda r: (r.loss_hkd is not None, r.loss_hkd or 0), reverse=True)


def cover1(*, as_of: datetime, available: Decimal) -> dict:
    """Cover-1 (the CCP standard, PFMI principle 4): the largest loss home's
    clients would suffer if one counterparty defaulted now, at stressed
    marks, against what the fund has available."""
    losses = losses_if_default(as_of=as_of)
    valued = [r.loss_hkd for r in losses if r.loss_hkd is not None]
    largest = max(valued, default=Decimal("0.00"))
    unvalued = [r.operator for r in losses if r.loss_hkd is None]
    return {
        "loss_if_default": [r.as_json() for r in losses],
        "largest_loss_if_default_hkd": largest,
        "largest_loss_operator": next((r.operator for r in losses if r.loss_hkd == largest and largest > 0), None),
        "cover1_ratio": (available / largest).quantize(Decimal("0.0001")) if largest > 0 else None,
        "cover1_covered": available >= largest and not unvalued,
        "cover1_unvalued": unvalued,
    }
