"""Exposure, the cap and its states (DESIGN section 5)."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from controls.models import Alert, AuditEvent
from settlement.models import Cycle, CycleRequest, ExposurePosition
from settlement.selectors.exposure import exposure_get, exposure_recompute
from settlement.services.exposure import exposure_verify
from settlement.services.trades import trades_ingest
from tests import factories
from tests.factories import trade

pytestmark = pytest.mark.django_db


def ingest(*items):
    return trades_ingest(items=list(items), actor="test")


def btc_bought_from(cp: str, quantity: str) -> dict:
    """Home buys BTC from a counterparty: the BTC is owed to home (gross exposure)."""
    return trade(sell=(cp, "c"), quantity=quantity, price="500000")


@pytest.mark.para(15)
def test_gross_exposure_counts_what_home_receives_valued_at_marks(network):
    ingest(btc_bought_from("SG1", "2"), trade(buy=("JP1", "j"), sell=("HK1", "pro-1"), quantity="1", price="500000"))

    exposure = exposure_get(as_of=timezone.now())

    # SG1 owes 2 BTC (1,000,000 HKD); JP1 owes 500,000 HKD for the BTC home sold it.
    assert {c.operator: c.exposure_hkd for c in exposure.by_counterparty} == {
        "JP1": Decimal("500000.00"),
        "SG1": Decimal("1000000.00"),
    }
    assert exposure.total_hkd == Decimal("1500000.00")
    assert exposure.effective_cap_hkd == Decimal("100000000.00")
    assert exposure.utilisation == Decimal("0.0150")
    assert exposure.state == "normal"


@pytest.mark.para(15)
def test_net_method_offsets_what_home_owes(network):
    ingest(
        btc_bought_from("SG1", "2"),
        trade(buy=("SG1", "s"), sell=("HK1", "pro-1"), base="ETH", quantity="10", price="20000"),
    )

    gross = exposure_get(as_of=timezone.now())
    net = exposure_get(as_of=timezone.now(), method="net")

    # Gross: 2 BTC (1,000,000) + 200,000 HKD for the ETH. Net: minus the
    # 1,000,000 HKD and 10 ETH (200,000) home owes SG1 = 0.
    assert gross.counterparty("SG1").exposure_hkd == Decimal("1200000.00")
    assert net.as_json()["by_counterparty"][1]["exposure_hkd"] == "0.00"


@pytest.mark.para(15)
def test_a_new_mark_revalues_at_once(network):
    ingest(btc_bought_from("SG1", "2"))

    factories.set_mark(network.btc, "600000")

    assert exposure_get(as_of=timezone.now()).total_hkd == Decimal("1200000.00")


@pytest.mark.para(17)
def test_effective_cap_is_the_smaller_of_cap_and_reserve(db):
    factories.build_network(cap="100000000", reserve="60000000")

    exposure = exposure_get(as_of=timezone.now())

    assert exposure.effective_cap_hkd == Decimal("60000000.00")
    assert exposure.reserve_available_hkd == Decimal("60000000.00")


@pytest.mark.para(15)
@pytest.mark.parametrize(
    ("btc", "state"),
    [
        ("139", "normal"),
        ("140", "warning"),
        ("159.99", "warning"),
        ("160", "settling"),
        ("199.99", "settling"),
        ("200", "halted"),
    ],
)
def test_states_follow_utilisation_thresholds(db, btc, state):
    factories.build_network(cap="100000000", reserve="120000000")
    # 200 BTC x 500,000 = 100,000,000 = the cap
    ingest(btc_bought_from("SG1", btc))

    assert exposure_get(as_of=timezone.now()).state == state


@pytest.mark.para(15)
def test_missing_mark_halts_with_the_reason_and_is_never_valued_at_zero(network):
    network.eth.mark_hkd = None
    network.eth.save()
    ingest(trade(base="ETH", sell=("SG1", "c"), quantity="1", price="20000"))

    exposure = exposure_get(as_of=timezone.now())

    assert exposure.state == "halted"
    assert exposure.reasons[0].startswith("no mark for ETH")


@pytest.mark.para(15)
def test_stale_mark_is_flagged_but_does_not_halt(network):
    factories.set_mark(network.btc, "500000", as_of=timezone.now() - timezone.timedelta(hours=2))
    ingest(btc_bought_from("SG1", "1"))

    exposure = exposure_get(as_of=timezone.now())

    assert exposure.state == "normal"
    assert any("mark for BTC is stale" in r for r in exposure.reasons)


@pytest.mark.para(15, 17)
def test_no_reserve_means_halted(db):
    factories.build_network(reserve=None)

    exposure = exposure_get(as_of=timezone.now())
    assert exposure.state == "halted"
    assert "effective cap is zero" in exposure.reasons[0]


@pytest.mark.para(15)
def test_counterparty_limit_is_reported(network):
    network.sg1.limit_hkd = Decimal("1000000")
    network.sg1.save()
    ingest(btc_bought_from("SG1", "2"))

    exposure = exposure_get(as_of=timezone.now())

    assert any("SG1 exposure 1000000.00 HKD is at or above its limit" in r for r in exposure.reasons)


@pytest.mark.para(15)
def test_crossing_settle_at_requests_one_intraday_cycle_and_runs_it(network, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as queued:
        ingest(btc_bought_from("SG1", "170"))  # utilisation 0.85
        ingest(btc_bought_from("SG1", "1"))  # still settling, the request already pending: no second one

    assert len(queued) == 1  # the dispatch task is queued only once the request row is committed
    request = CycleRequest.objects.get()
    assert (request.kind, request.utilisation) == ("intraday", Decimal("0.8500"))
    assert AuditEvent.objects.filter(action="cycle_request.created").count() == 1
    # the task ran (eagerly): an intraday cycle at or after the request, which marked it done
    cycle = Cycle.objects.get(kind="intraday")
    assert cycle.as_of >= request.requested_at
    assert request.status == "done"


@pytest.mark.para(12, 15)
def test_recompute_agrees_with_running_positions(network):
    ingest(*[btc_bought_from(cp, "0.1") for cp in ("SG1", "JP1") for _ in range(5)])

    now = timezone.now()
    assert exposure_recompute(as_of=now).as_json() == exposure_get(as_of=now).as_json()
    assert exposure_verify(as_of=now).ok


@pytest.mark.para(15)
def test_verify_raises_an_alert_on_any_difference(network):
    ingest(btc_bought_from("SG1", "1"))
    ExposurePosition.objects.filter(asset=network.btc).update(receivable=Decimal("0.9"))  # corrupt the running figure

    result = exposure_verify(as_of=timezone.now())

    assert not result.ok
    alert = Alert.objects.get()
    assert alert.kind == "exposure_mismatch"
    assert alert.details["differences"][0]["running"][0] == "0.900000000000000000"
    assert AuditEvent.objects.filter(action="exposure.mismatch").exists()


def test_exposure_command_verify_exits_non_zero_on_mismatch(network, capsys):
    ingest(btc_bought_from("SG1", "1"))
    call_command("exposure", "--verify")
    assert "agree" in capsys.readouterr().out

    ExposurePosition.objects.filter(asset=network.btc).update(receivable_count=5)
    with pytest.raises(CommandError, match="differs from the recompute"):
        call_command("exposure", "--verify", "--json")


def test_verify_task_runs_the_service(network):
    from settlement.tasks import exposure_verify_task

    ingest(btc_bought_from("SG1", "1"))
    assert exposure_verify_task.delay().get() == {"ok": True, "differences": 0, "alert_id": None}


@pytest.mark.para(15)
def test_exposure_verification_is_scheduled_in_the_database(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="settlement.exposure_verify")
    assert (task.interval.every, task.interval.period, task.enabled) == (300, "seconds", True)
