"""Property: over any sequence of funding events, holds, amendments,
releases, expiries, trades and settlements, no balance's available ever goes
below zero, and every balance and hold equals a recompute from the
append-only records."""

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controls.exceptions import DomainError
from settlement.models import Batch, PrefundingHold
from settlement.selectors.prefunding import prefunding_recompute
from settlement.services.cycles import batch_settle, cycle_run
from settlement.services.prefunding import funding_event_record, hold_amend, hold_release, holds_expire, holds_place
from settlement.services.trades import trades_ingest
from tests.factories import trade

from .conftest import prefunding_network

pytestmark = [pytest.mark.django_db, pytest.mark.para(10, 13)]

ACCOUNTS = {"HK1": ("h1", "h2"), "SG1": ("s1", "s2")}
ORDERS = [f"O{i}" for i in range(4)]
amounts = st.sampled_from(["0.5", "1", "2.5", "4", "10", "25"])
side = st.sampled_from([(op, acct) for op, accts in ACCOUNTS.items() for acct in accts])
asset = st.sampled_from(["BTC", "USDC"])

operations = st.one_of(
    st.tuples(st.just("deposit"), side, asset, amounts),
    st.tuples(st.just("adjust"), side, asset, st.sampled_from(["-3", "-0.5", "2"])),
    st.tuples(st.just("reserve"), side, asset, amounts),
    st.tuples(st.just("finish"), st.integers(0, 5), st.booleans(), st.sampled_from(["1", "0.5"])),
    st.tuples(st.just("hold"), st.sampled_from(ORDERS), side, asset, amounts),
    # holds a trade can meet: home's clients pay USDC, SG1's (or home's) deliver BTC
    st.tuples(
        st.just("hold"),
        st.sampled_from(ORDERS),
        st.tuples(st.just("HK1"), st.sampled_from(ACCOUNTS["HK1"])),
        st.just("USDC"),
        amounts,
    ),
    st.tuples(st.just("hold"), st.sampled_from(ORDERS), side, st.just("BTC"), st.sampled_from(["0.5", "1", "2"])),
    st.tuples(st.just("amend"), st.sampled_from(ORDERS), st.sampled_from(["0.5", "1"])),
    st.tuples(st.just("release"), st.sampled_from(ORDERS)),
    st.tuples(st.just("expire"), st.sampled_from(ORDERS)),
    st.tuples(
        st.just("trade"),
        st.sampled_from(ACCOUNTS["HK1"]),
        st.sampled_from(ACCOUNTS["SG1"] + ACCOUNTS["HK1"]),
        st.sampled_from(["0.5", "1", "3"]),
        # the order each side names: mostly one of the holds open now (by position), else another or none
        st.one_of(st.integers(0, 3), st.sampled_from(["O9", None])),
        st.one_of(st.integers(0, 3), st.sampled_from(["O9", None])),
    ),
    st.tuples(st.just("settle")),
)


class World:
    def __init__(self):
        self.pf = prefunding_network()
        self.ids = count(1)
        self.reserves: list[tuple[str, str, str, str, str]] = []  # (operator, account, asset, event_id, amount)
        self.holds: dict[str, tuple[str, str, str]] = {}  # order id -> (operator, account, asset)
        for operator, accounts in ACCOUNTS.items():  # something to hold from the start
            for account in accounts:
                for asset_code, amount in (("USDC", "20"), ("BTC", "3")):
                    self.apply(("deposit", (operator, account), asset_code, amount))

    def funding(self, operator, item):
        try:
            funding_event_record(
                item={**item, "occurred_at": timezone.now().isoformat()},
                operator=operator,
                actor="p",
                now=timezone.now(),
            )
            return True
        except DomainError:
            return False

    def apply(self, op) -> None:
        kind, *args = op
        now = timezone.now()
        if kind in ("deposit", "adjust", "reserve"):
            (operator, account), asset_code, amount = args
            event_id = f"E{next(self.ids)}"
            fkind = {"deposit": "deposit", "adjust": "adjustment", "reserve": "withdrawal_reserve"}[kind]
            item = {"event_id": event_id, "account": account, "asset": asset_code, "kind": fkind, "amount": amount}
            if self.funding(operator, item) and kind == "reserve":
                self.reserves.append((operator, account, asset_code, event_id, amount))
        elif kind == "finish":
            index, commit, share = args
            if not self.reserves:
                return
            operator, account, asset_code, reserve_id, amount = self.reserves[index % len(self.reserves)]
            finish = "withdrawal_commit" if commit else "withdrawal_abort"
            value = str(Decimal(amount) * Decimal(share)) if commit else amount
            item = {
                "event_id": f"E{next(self.ids)}",
                "account": account,
                "asset": asset_code,
                "kind": finish,
                "amount": value,
                "reference": reserve_id,
            }
            self.funding(operator, item)
        elif kind == "hold":
            order, (operator, account), asset_code, amount = args
            item = {"order_id": order, "operator": operator, "account": account, "asset": asset_code, "amount": amount}
            result = holds_place(items=[item], actor="p", now=now)[0]
            if result.outcome == "created":
                self.holds[order] = (operator, account, asset_code)
        elif kind in ("amend", "release", "expire") and args[0] in self.holds:
            order = args[0]
            operator = self.holds[order][0]
            try:
                if kind == "amend":
                    current = PrefundingHold.objects.get(operator__code=operator, order_id=order).amount
                    hold_amend(
                        operator=operator, order_id=order, amount=str(current * Decimal(args[1])), actor="p", now=now
                    )
                elif kind == "release":
                    hold_release(operator=operator, order_id=order, actor="p", now=now)
                else:
                    PrefundingHold.objects.filter(operator__code=operator, order_id=order).update(
                        expires_at=now - timedelta(seconds=1)
                    )
                    holds_expire(as_of=now, actor="p")
            except DomainError:
                pass
        elif kind == "trade":
            buyer, seller, quantity, buy_pick, sell_pick = args
            seller_operator = "SG1" if seller.startswith("s") else "HK1"
            buy_order, sell_order = buy_pick, sell_pick
            open_holds = PrefundingHold.objects.filter(status__in=PrefundingHold.OPEN).order_by("id")
            buys = list(open_holds.filter(operator__code="HK1", asset__code="USDC").values_list("order_id", "account"))
            sells = list(open_holds.filter(asset__code="BTC").values_list("order_id", "operator__code", "account"))
            if isinstance(buy_pick, int):
                buy_order, buyer = buys[buy_pick % len(buys)] if buys else (None, buyer)
            if isinstance(sell_pick, int):
                sell_order, seller_operator, seller = (
                    sells[sell_pick % len(sells)] if sells else (None, seller_operator, seller)
                )
            item = trade(
                trade_id=f"T{next(self.ids)}",
                base="BTC",
                quote="USDC",
                price="2",
                quantity=quantity,
                buy=("HK1", buyer),
                sell=(seller_operator, seller),
                executed_at=(now - timedelta(seconds=1)).isoformat(),
            )
            if item["buy"]["account"] == item["sell"]["account"] and item["sell"]["operator"] == "HK1":
                return
            if buy_order:
                item["buy"]["order_id"] = buy_order
            if sell_order:
                item["sell"]["order_id"] = sell_order
            result = trades_ingest(items=[item], actor="engine", now=now)
            assert not result.rejected, result.rejected  # never refused for prefunding
        elif kind == "settle":
            cycle = cycle_run(kind="intraday", as_of=now + timedelta(microseconds=next(self.ids)), actor="p")
            for batch in cycle.batches.filter(status=Batch.Status.OPEN):
                batch_settle(batch=batch, as_of=now, actor="p")

    def check(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM settlement_prefundingbalance WHERE funded - held - committed < 0 "
                "OR funded < 0 OR held < 0 OR committed < 0"
            )
            assert cursor.fetchone()[0] == 0
        assert prefunding_recompute() == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(operations, min_size=8, max_size=40))
def test_available_never_goes_negative_and_balances_always_equal_a_recompute(db, steps):
    with transaction.atomic():
        world = World()
        for step in steps:
            world.apply(step)
            world.check()
        transaction.set_rollback(True)
