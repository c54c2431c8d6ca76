import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from operations.services.demo import demo_activity
from settlement.models import Batch, Leg

pytestmark = pytest.mark.django_db


def test_demo_activity_is_refused_outside_demo_mode(network, settings):
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match="DEMO=1"):
        call_command("demo_activity")


def test_demo_activity_labels_its_simulated_confirmations(network, settings):
    settings.DEMO_MODE = True

    call_command("demo_activity", "--trades", "30", "--seed", "7")

    confirmed = Leg.objects.filter(status="confirmed")
    assert confirmed.exists()
    assert all("DEMO CONFIRMATION" in leg.evidence["demo"] for leg in confirmed)
    assert Batch.objects.filter(status="settled").exists()


@pytest.mark.para(10)
def test_demo_orders_are_funded_and_held_before_they_match(settings):
    """The demo follows paragraph 10 as production does: each order's operator
    deposits what it needs, the engine holds it, and the trade names the
    order, so its hold is consumed. An operator with no designated
    custodian holder (JP1 here) cannot be verified: its holds are refused
    and its trades become compliance exceptions, never silently pass."""
    from settlement.models import ComplianceException, PrefundingHold, Trade
    from tests.settlement.prefunding.conftest import prefunding_network

    prefunding_network()
    settings.DEMO_MODE = True

    result = demo_activity(now=timezone.now(), trades=30, seed=11)

    assert result["holds"]["placed"] > 0
    assert set(result["holds"]["refused"]) <= {"attestation_stale"}
    held = PrefundingHold.objects.filter(order_id__startswith="DEMO-")
    assert held.exists() and not held.filter(consumed=0).exists()  # every held order traded
    verified = Trade.objects.exclude(buy_operator__code="JP1").exclude(sell_operator__code="JP1")
    assert verified.exists()
    assert not ComplianceException.objects.filter(trade__in=verified, code__startswith="prefunding").exists()
