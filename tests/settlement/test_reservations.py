"""Reserving pre-trade checks (DESIGN section 5): the check that makes the
cap binding."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from controls.models import AuditEvent
from settlement.models import CapConfig, ExposureReservation, TradeException
from settlement.selectors.exposure import exposure_get
from settlement.selectors.exposure_check import exposure_check
from settlement.services.reservations import exposure_reserve
from settlement.services.trades import trades_ingest
from tests import factories
from tests.factories import trade
from tests.locks import RowLock


def reserve(amount: str, *, cp: str = "SG1", asset: str = "BTC", at=None):
    return exposure_reserve(
        counterparty=cp, asset=asset, amount=amount, account=None, actor="engine", as_of=at or timezone.now()
    )


@pytest.mark.django_db
@pytest.mark.para(15)
def test_a_reservation_counts_against_the_cap_until_it_expires(network):
    factories.set_cap("1000000")
    now = timezone.now()

    taken = reserve("1.2", at=now)  # 600,000 HKD of the 1,000,000 cap

    assert taken.allowed and taken.reservation_id
    assert taken.expires_at == now + timedelta(seconds=settings.EXPOSURE_RESERVATION_TTL_SECONDS)
    assert taken.headroom_hkd == Decimal("400000.00")
    # the next check sees the reserved room as taken, reserving or not
    assert exposure_check(counterparty="SG1", asset="BTC", amount="1", account=None, as_of=now).allowed is False
    assert reserve("1", at=now).reason.startswith("cap_exceeded")
    exposure = exposure_get(as_of=now)
    assert exposure.reserved_hkd == Decimal("600000.00")
    assert exposure.counterparty("SG1").reserved_hkd == Decimal("600000.00")
    assert exposure.utilisation == Decimal("0.6000")
    assert AuditEvent.objects.filter(action="exposure.reserved", object_id=taken.reservation_id).exists()

    # expired, it counts no more
    later = taken.expires_at
    assert exposure_get(as_of=later).reserved_hkd == Decimal("0.00")
    assert exposure_check(counterparty="SG1", asset="BTC", amount="1", account=None, as_of=later).allowed is True


@pytest.mark.django_db
@pytest.mark.para(15)
def test_a_reservation_counts_against_the_counterpartys_limit(network):
    network.sg1.limit_hkd = Decimal("800000")
    network.sg1.save()

    assert reserve("1").allowed
    second = reserve("1")

    assert second.allowed is False and second.reason.startswith("limit_exceeded")
    assert reserve("1", cp="JP1").allowed  # another counterparty's limit is its own


@pytest.mark.django_db
@pytest.mark.para(15)
def test_a_trade_naming_the_reservation_consumes_it_once(network):
    factories.set_cap("1000000")
    taken = reserve("1.2")
    item = trade(sell=("SG1", "c"), quantity="1.2", price="500000")
    item["sell"]["reservation_id"] = taken.reservation_id

    result = trades_ingest(items=[item], actor="engine")

    assert result.accepted == 1
    reservation = ExposureReservation.objects.get(reservation_id=taken.reservation_id)
    assert reservation.status == "consumed" and reservation.trade.trade_id == item["trade_id"]
    exposure = exposure_get(as_of=timezone.now())
    # the trade's obligation carries the exposure now; the reservation no longer adds to it
    assert (exposure.total_hkd, exposure.reserved_hkd) == (Decimal("600000.00"), Decimal("0.00"))
    # a second trade naming it is accepted (it executed) and consumes nothing
    again = trade(sell=("SG1", "c"), quantity="0.1", price="500000")
    again["buy"]["reservation_id"] = taken.reservation_id
    assert trades_ingest(items=[again], actor="engine").accepted == 1
    assert ExposureReservation.objects.get(reservation_id=taken.reservation_id).trade.trade_id == item["trade_id"]


@pytest.mark.django_db
@pytest.mark.para(15)
def test_a_reservation_is_consumed_only_by_a_trade_with_its_counterparty(network):
    taken = reserve("1")
    item = trade(sell=("JP1", "j"), quantity="1", price="500000")
    item["sell"]["reservation_id"] = taken.reservation_id

    assert trades_ingest(items=[item], actor="engine").accepted == 1

    assert ExposureReservation.objects.get(reservation_id=taken.reservation_id).status == "reserved"


@pytest.mark.django_db
def test_a_malformed_reservation_id_rejects_the_item_naming_the_field(network):
    item = trade(sell=("SG1", "c"))
    item["sell"]["reservation_id"] = "not-a-uuid"

    result = trades_ingest(items=[item], actor="engine")

    assert result.accepted == 0
    assert (result.rejected[0].code, result.rejected[0].field) == ("invalid_field", "sell.reservation_id")
    assert TradeException.objects.filter(trade_id=item["trade_id"]).exists()


@pytest.mark.django_db
def test_the_check_api_reserves_on_request(engine_client, network):
    body = {"counterparty": "SG1", "asset": "BTC", "amount": "1"}

    plain = engine_client.post("/api/v1/exposure/check", body, format="json").json()
    reserving = engine_client.post("/api/v1/exposure/check", {**body, "reserve": True}, format="json").json()
    bad = engine_client.post("/api/v1/exposure/check", {**body, "reserve": "yes"}, format="json")

    assert "reservation_id" not in plain
    assert reserving["allowed"] is True
    assert ExposureReservation.objects.filter(reservation_id=reserving["reservation_id"]).exists()
    assert reserving["expires_at"].endswith("Z")
    assert bad.status_code == 400 and bad.json()["field"] == "reserve"
    assert ExposureReservation.objects.count() == 1


@pytest.mark.django_db
def test_a_denied_reserving_check_reserves_nothing(network):
    factories.set_cap("100000")

    denied = reserve("1")

    assert denied.allowed is False and denied.reservation_id is None
    assert ExposureReservation.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.para(15)
def test_concurrent_reserving_checks_near_the_cap_never_together_pass_it():
    """Both checks ask for 60 % of the cap. Each queues on the cap row
    (held here); released, the first reserves and the second, reading after
    the first committed, is denied."""
    factories.build_network(cap="1000000")
    now = timezone.now()

    with RowLock(CapConfig, CapConfig.objects.get().pk) as held:
        first = held.start(lambda: reserve("1.2", at=now), waiters=1)
        second = held.start(lambda: reserve("1.2", cp="JP1", at=now), waiters=2)
        held.release()
    results = [first.outcome(), second.outcome()]

    assert [r.allowed for r in results] == [True, False]
    assert results[1].reason.startswith("cap_exceeded")
    assert ExposureReservation.objects.count() == 1
    assert exposure_get(as_of=now).reserved_hkd == Decimal("600000.00")
