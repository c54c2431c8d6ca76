"""Risk at the price of a replacement (DESIGN section 5): haircuts on the
receivable, stale marks that fail safe, and the suggested haircut."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from registry.models import Asset, Mark
from registry.selectors import asset_horizon, haircut_suggest, rail_horizon
from settlement.selectors.exposure import exposure_get, exposure_recompute
from settlement.selectors.exposure_check import exposure_check
from settlement.services.marks import marks_post
from settlement.services.trades import trades_ingest
from tests import factories
from tests.conftest import staff_client
from tests.factories import trade

pytestmark = pytest.mark.django_db


def set_haircut(asset: Asset, value: str) -> None:
    asset.haircut = Decimal(value)
    asset.save(update_fields=["haircut"])


def sg1_owes_btc(quantity: str) -> None:
    """Home's client buys BTC from SG1: SG1 owes home the BTC."""
    trades_ingest(items=[trade(sell=("SG1", "c"), quantity=quantity, price="500000")], actor="test")


@pytest.mark.para(15, 17)
def test_exposure_against_the_cap_is_at_the_replacement_price(network):
    set_haircut(network.btc, "0.10")
    sg1_owes_btc("2")

    exposure = exposure_get(as_of=timezone.now())

    # 2 BTC at 500,000 is 1,000,000 at the mark; replacing it may cost 10 % more
    sg1 = exposure.counterparty("SG1")
    assert (sg1.at_marks_hkd, sg1.exposure_hkd) == (Decimal("1000000.00"), Decimal("1100000.00"))
    assert (exposure.total_at_marks_hkd, exposure.total_hkd) == (Decimal("1000000.00"), Decimal("1100000.00"))
    assert exposure.utilisation == Decimal("0.0110")  # the cap checks the haircut figure


@pytest.mark.para(15)
def test_get_exposure_shows_the_plain_and_the_haircut_figures(engine_client, network):
    set_haircut(network.btc, "0.25")
    sg1_owes_btc("1")

    body = engine_client.get("/api/v1/exposure").json()

    assert (body["total_hkd"], body["total_at_marks_hkd"]) == ("625000.00", "500000.00")
    sg1 = next(c for c in body["by_counterparty"] if c["operator"] == "SG1")
    assert (sg1["exposure_hkd"], sg1["exposure_at_marks_hkd"]) == ("625000.00", "500000.00")
    assert body["stale_marks"] == []


@pytest.mark.para(15)
def test_incremental_and_recomputed_exposure_agree_on_both_figures(network):
    set_haircut(network.btc, "0.10")
    set_haircut(network.usdc, "0.02")
    sg1_owes_btc("3")
    trades_ingest(
        items=[trade(base="USDC", quote="HKD", price="7.8", quantity="1000", sell=("JP1", "j"))], actor="test"
    )

    now = timezone.now()
    running, recomputed = exposure_get(as_of=now), exposure_recompute(as_of=now)

    assert running.total_hkd == recomputed.total_hkd == Decimal("1657956.00")  # 1,650,000 + 7,956
    assert running.total_at_marks_hkd == recomputed.total_at_marks_hkd == Decimal("1507800.00")
    assert [(c.operator, c.exposure_hkd, c.at_marks_hkd) for c in running.by_counterparty] == [
        (c.operator, c.exposure_hkd, c.at_marks_hkd) for c in recomputed.by_counterparty
    ]


@pytest.mark.para(15)
def test_the_pre_trade_check_adds_at_the_replacement_price(network):
    factories.set_cap("1000000")
    set_haircut(network.btc, "0.10")

    fits = exposure_check(counterparty="SG1", asset="BTC", amount="1.8", account=None, as_of=timezone.now())
    too_much = exposure_check(counterparty="SG1", asset="BTC", amount="1.82", account=None, as_of=timezone.now())

    # 1.8 BTC is 900,000 at the mark and 990,000 at the replacement price: under 1,000,000
    assert (fits.allowed, fits.added_hkd) == (True, Decimal("990000.00"))
    # 1.82 BTC is 910,000 at the mark, under the cap; at 1,001,000 it is not
    assert too_much.allowed is False and too_much.reason.startswith("cap_exceeded")


@pytest.mark.para(15)
def test_a_stale_mark_denies_new_exposure_in_its_asset_doubles_its_haircut_and_clears_with_a_fresh_mark(network):
    set_haircut(network.btc, "0.10")
    marked_at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    factories.set_mark(network.btc, "500000", as_of=marked_at)
    factories.set_mark(network.usdc, "7.80", as_of=marked_at)
    sg1_owes_btc("2")
    fresh = marked_at + timedelta(seconds=settings.MARK_STALE_AFTER_SECONDS)
    stale = fresh + timedelta(seconds=1)

    def check(asset: str, amount: str, at: datetime):
        return exposure_check(counterparty="SG1", asset=asset, amount=amount, account=None, as_of=at)

    # at the limit the mark is still fresh: the plain haircut, new BTC allowed
    assert exposure_get(as_of=fresh).total_hkd == Decimal("1100000.00")
    assert check("BTC", "0.1", fresh).allowed is True

    # one second later it is stale
    exposure = exposure_get(as_of=stale)
    assert exposure.total_hkd == Decimal("1200000.00")  # 1,000,000 x (1 + 2 x 0.10)
    assert exposure.total_at_marks_hkd == Decimal("1000000.00")
    assert exposure.stale_marks == ["BTC"]
    assert any(r.startswith("mark for BTC is stale") for r in exposure.reasons)
    denied = check("BTC", "0.1", stale)
    assert denied.allowed is False
    assert denied.reason.startswith("mark_stale: the BTC mark")
    # only the stale asset is refused; HKD (never stale) still passes
    assert check("HKD", "1000", stale).allowed is True

    # a fresh mark clears it
    marks_post(marks=[{"asset": "BTC", "price_hkd": "500000", "as_of": stale.isoformat()}], actor="feed", now=stale)
    assert exposure_get(as_of=stale).total_hkd == Decimal("1100000.00")
    assert exposure_get(as_of=stale).stale_marks == []
    assert check("BTC", "0.1", stale).allowed is True


@pytest.mark.para(15)
def test_exposure_check_api_answers_mark_stale(engine_client, network):
    factories.set_mark(network.btc, "500000", as_of=timezone.now() - timedelta(hours=2))

    body = engine_client.post(
        "/api/v1/exposure/check", {"counterparty": "SG1", "asset": "BTC", "amount": "1"}, format="json"
    ).json()

    assert body["allowed"] is False
    assert body["reason"].startswith("mark_stale")


# --- the haircut setting: four eyes, and the suggestion beside it ---------------------------


@pytest.mark.para(15)
def test_a_haircut_changes_only_when_a_second_person_approves(network):
    maker, checker = staff_client("maker", "ops_operator"), staff_client("checker", "ops_approver")

    asked = maker.post("/api/v1/ops/assets/BTC/haircut", {"haircut": "0.15"}, format="json")

    assert asked.status_code == 202, asked.content
    network.btc.refresh_from_db()
    assert network.btc.haircut == Decimal(0)
    assert maker.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve").status_code == 403
    assert checker.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve").status_code == 200
    network.btc.refresh_from_db()
    assert network.btc.haircut == Decimal("0.15")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"haircut": "1.5"}, "out_of_range"),
        ({"haircut": "-0.1"}, "out_of_range"),
        ({"haircut": "0.12345"}, None),
        ({"haircut": 0.1}, "number_not_string"),
        ({}, None),
    ],
)
def test_a_bad_haircut_is_refused_naming_the_field(network, body, code):
    maker = staff_client("maker", "ops_operator")

    response = maker.post("/api/v1/ops/assets/BTC/haircut", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["field"] == "haircut"
    if code:
        assert response.json()["code"] == code


def test_an_unknown_asset_is_404(network):
    response = staff_client("maker", "ops_operator").post(
        "/api/v1/ops/assets/NOPE/haircut", {"haircut": "0.1"}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.para(13, 15)
def test_the_horizon_of_a_bank_rail_spans_its_longest_coming_closure(network):
    hkd_rail = network.hkd.rail
    # Easter 2026 in Hong Kong: Good Friday 3 April to Easter Tuesday 7 April
    # (with the weekend). A trade just at Thursday's cut-off waits for
    # Wednesday 8 April's: six days.
    assert rail_horizon(hkd_rail, as_of=datetime(2026, 3, 20, 2, tzinfo=UTC), days=30) == timedelta(days=6)
    # the crypto rail settles within its window, every day
    assert rail_horizon(network.btc.rail, as_of=datetime(2026, 3, 20, 2, tzinfo=UTC), days=30) == timedelta(
        minutes=network.btc.rail.window_minutes
    )
    # BTC traded against HKD waits for the HKD leg (DVP per trade)
    assert asset_horizon(network.btc, as_of=datetime(2026, 3, 20, 2, tzinfo=UTC)) == timedelta(days=6)


@pytest.mark.para(15)
def test_the_suggested_haircut_is_the_99_percent_rise_over_the_horizon(network, settings):
    settings.HAIRCUT_HORIZON_LOOKAHEAD_DAYS = 3
    settings.HAIRCUT_MIN_SAMPLES = 10
    as_of = datetime(2026, 6, 1, 2, tzinfo=UTC)
    horizon = asset_horizon(network.btc, as_of=as_of)
    hours = int(horizon.total_seconds() // 3600)
    # a mark every hour for 20 days, rising 0.1 % an hour: every window of
    # the horizon rises by the same factor, so that is its 99 % quantile
    start = as_of - timedelta(days=20)
    Mark.objects.bulk_create(
        Mark(
            asset=network.btc,
            price_hkd=(Decimal(100000) * Decimal("1.001") ** h).quantize(Decimal("0.000001")),
            as_of=start + timedelta(hours=h),
            source="test",
            received_at=start + timedelta(hours=h),
        )
        for h in range(20 * 24 + 1)
    )
    expected_rise = Decimal("1.001") ** hours - 1

    suggestion = haircut_suggest(network.btc, as_of=as_of)

    assert suggestion.horizon == horizon
    assert suggestion.samples == 20 * 24 + 1 - hours
    assert suggestion.suggested is not None
    assert abs(suggestion.suggested - expected_rise) <= Decimal("0.0001")
    assert suggestion.suggested >= expected_rise.quantize(Decimal("0.0001")) - Decimal("0.0001")
    assert suggestion.setting == Decimal(0)


def test_too_little_history_suggests_nothing_and_says_why(network):
    suggestion = haircut_suggest(network.btc, as_of=timezone.now())
    assert suggestion.suggested is None
    assert "needed" in suggestion.note


def test_get_haircut_shows_the_setting_beside_the_suggestion(network):
    set_haircut(network.btc, "0.08")

    body = staff_client("viewer", "ops_viewer").get("/api/v1/ops/assets/BTC/haircut").json()

    assert body["asset"] == "BTC"
    assert body["haircut"] == "0.0800"
    assert set(body) == {"asset", "haircut", "suggested", "horizon_hours", "samples", "note"}
