import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

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
