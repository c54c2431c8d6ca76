"""Demo activity for `make run`: trades, a cycle, and SIMULATED confirmations.

Every confirmation this writes carries evidence saying it is a demo
simulation, not a transfer, and the command refuses to run unless the
DEMO setting is on.
"""

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from controls.exceptions import Forbidden, NotFound
from controls.services.audit import audit_record
from custody.models import ChainBlock, ChainCursor
from registry.models import Operator, Rail
from settlement.models import Batch, Leg
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest

DEMO_EVIDENCE = {"demo": "DEMO CONFIRMATION: simulated by demo_activity, no real transfer took place"}
ACTOR = "demo"
PAIRS = [
    ("BTC", "USDC", "64000", 4),
    ("ETH", "USDC", "2500", 3),
    ("BTC", "HKD", "500000", 4),
    ("ETH", "HKD", "20000", 3),
]


def demo_activity(*, now: datetime, trades: int = 12, seed: int | None = None) -> dict:
    if not settings.DEMO_MODE:
        raise Forbidden("forbidden", "demo_activity runs only with DEMO=1 (make run); it simulates confirmations")
    rng = random.Random(seed)
    counterparties = list(Operator.objects.filter(role="overseas", status="active").values_list("code", flat=True))
    home = Operator.objects.get(role="home")
    accounts = list(home.accounts.filter(client_class="professional").values_list("ref", flat=True)) or ["demo-client"]
    stamp = now.strftime("%Y%m%d%H%M%S")
    items = []
    for i in range(trades):
        base, quote, price, places = rng.choice(PAIRS)
        cp = rng.choice(counterparties)
        quantity = f"{rng.randint(1, 10**places) / 10**places:.{places}f}"
        buy, sell = (home.code, rng.choice(accounts)), (cp, f"{cp.lower()}-client-{rng.randint(1, 50)}")
        if rng.random() < 0.5:
            buy, sell = sell, buy
        items.append(
            {
                "trade_id": f"DEMO-{stamp}-{i:03d}",
                "base_asset": base,
                "quote_asset": quote,
                "price": price,
                "quantity": quantity,
                "buy": {"operator": buy[0], "account": buy[1]},
                "sell": {"operator": sell[0], "account": sell[1]},
                "executed_at": (now - timedelta(seconds=5)).isoformat(),
            }
        )
    ingest = trades_ingest(items=items, actor=ACTOR, now=now)
    cycle = cycle_run(kind="intraday", as_of=now.replace(second=0, microsecond=0) + timedelta(minutes=1), actor=ACTOR)
    # Settle every batch but one, so the dashboard shows both a finished and a waiting DVP.
    batches = list(cycle.batches.filter(status=Batch.Status.OPEN).order_by("counterparty__code"))
    confirmed = 0
    for batch in batches[:-1] if len(batches) > 1 else batches:
        for direction in (Leg.Direction.INBOUND, Leg.Direction.OUTBOUND):
            for leg in batch.legs.filter(direction=direction, status=Leg.Status.INSTRUCTED):
                leg_confirm(leg_id=leg.id, evidence=DEMO_EVIDENCE, actor=ACTOR, as_of=cycle.as_of)
                confirmed += 1
    return {"trades": ingest.accepted, "cycle": cycle.id, "batches": len(batches), "legs_confirmed_by_demo": confirmed}


def demo_chain_reset(*, rail_code: str, now: datetime) -> bool:
    """The demo chain (anvil) started afresh while the database remembers the
    old one: forget the watcher's cursor and block trail for that rail, so
    the watcher starts at the new chain's head instead of reporting a reorg
    deeper than its trail. Demo only: on a real chain that is an alarm."""
    if not settings.DEMO_MODE:
        raise Forbidden("forbidden", "demo_chain_reset runs only with DEMO=1 (make run)")
    with transaction.atomic():
        rail = Rail.objects.select_for_update().filter(code=rail_code).first()
        if rail is None:
            raise NotFound("unknown_rail", f"no rail {rail_code!r}")
        cursor = ChainCursor.objects.filter(rail=rail).first()
        if cursor is None:
            return False
        before = {"block_number": cursor.block_number, "block_hash": cursor.block_hash}
        ChainBlock.objects.filter(rail=rail).delete()
        cursor.delete()
        audit_record(
            actor=ACTOR,
            action="chain_cursor.demo_reset",
            object_type="Rail",
            object_id=rail.code,
            before=before,
            after={"reason": "the demo chain started without its saved state"},
            at=now,
        )
    return True
