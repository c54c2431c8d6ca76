"""A day of operations, for the pages people look at (the browser tests and
their screenshots): trades through the day with exposure snapshots, SG1 over
its 40,000,000 HKD limit, a cycle with legs, a failed batch, an old break,
long alerts, and requests waiting for a second person."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User

from controls.models import ApprovalRequest
from controls.services.alerts import alert_raise
from controls.services.approvals import approval_request
from custody.models import Break
from registry.models import Mark
from reserves.services.monitoring import exposure_snapshot_take
from settlement.models import Leg
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.trades import trades_ingest
from tests import factories
from tests.factories import trade

PASSWORD = "browser-test-Pw-1"
GROUPS = ("ops_viewer", "ops_operator", "ops_approver")


@dataclass
class Day:
    network: factories.Network
    users: dict[str, User]
    default_request: ApprovalRequest


def mark_post(*, asset, price: str, as_of: datetime) -> None:
    Mark.objects.create(asset=asset, price_hkd=Decimal(price), as_of=as_of, source="scenario", received_at=as_of)


def staff(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def day_of_operations(now: datetime) -> Day:
    network = factories.build_network()
    for asset, price in ((network.btc, "500000"), (network.eth, "20000"), (network.usdc, "7.80")):
        mark_post(asset=asset, price=price, as_of=now - timedelta(hours=4))
    network.sg1.limit_hkd = Decimal("40000000")
    network.sg1.save()
    network.jp1.limit_hkd = Decimal("30000000")
    network.jp1.save()

    # the morning: a batch taken three hours ago that nobody delivered fails
    early = now - timedelta(hours=3)
    trades_ingest(
        items=[trade(sell=("JP1", "jp-7"), quantity="4", executed_at=(early - timedelta(minutes=5)).isoformat())],
        actor="engine",
        now=early,
    )
    cycle_run(kind="intraday", as_of=early, actor="celery")
    deadlines_check(as_of=now - timedelta(minutes=30), actor="celery")

    # trades through the day, with the exposure snapshot beat takes every minute
    steps = [("SG1", "12"), ("JP1", "6"), ("SG1", "30"), ("SG1", "25"), ("JP1", "8"), ("SG1", "40"), ("SG1", "48.2")]
    for i, (cp, btc) in enumerate(steps):
        at = now - timedelta(minutes=100 - i * 14)
        trades_ingest(
            items=[trade(sell=(cp, f"{cp.lower()}-client-{i}"), quantity=btc, executed_at=at.isoformat())],
            actor="engine",
            now=at,
        )
        exposure_snapshot_take(now=at)
        exposure_snapshot_take(now=at + timedelta(minutes=7))
    trades_ingest(items=[trade(base="DOGE")], actor="engine", now=now)  # one rejection for the queue
    cycle_run(kind="intraday", as_of=now - timedelta(minutes=2), actor="celery")

    users = {group: staff(group.replace("ops_", ""), group) for group in GROUPS}
    users["maker"] = staff("maker", "ops_operator")
    Break.objects.create(
        key="scenario:unmatched-usdc",
        kind=Break.Kind.UNMATCHED_RECEIPT,
        amount=Decimal("1250.5"),
        asset=network.usdc,
        counterparty=network.sg1,
        description="1,250.500000 USDC arrived from SG1's registered wallet with no leg to match",
        opened_at=now - timedelta(hours=6),
        updated_at=now - timedelta(hours=6),
    )
    alert_raise(
        kind="rail_degraded",
        message="rail eth degraded: watcher: no new block for 612 s from http://127.0.0.1:8545; deadlines on this "
        "rail pause until the node answers again and the rail's status is back to up",
        at=now - timedelta(minutes=20),
    )
    default_request = approval_request(
        kind=ApprovalRequest.Kind.DEFAULT,
        payload={"operator": "JP1", "reason": "missed the morning batch and stopped answering"},
        user=users["maker"],
        now=now - timedelta(minutes=10),
    )
    leg = Leg.objects.filter(status=Leg.Status.INSTRUCTED, direction=Leg.Direction.INBOUND).order_by("id").first()
    if leg is not None:
        approval_request(
            kind=ApprovalRequest.Kind.LEG_CONFIRM,
            payload={"leg_id": leg.id, "evidence": "custodian's call-back 14:02 HKT, ref CB-2231"},
            user=users["maker"],
            now=now - timedelta(minutes=5),
        )
    return Day(network=network, users=users, default_request=default_request)
