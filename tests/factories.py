"""Factories for the registry and a ready-made test network.

``build_network()`` gives: home HK1; overseas SG1 and JP1 (eligible); assets
BTC (scale 8), ETH (18), USDC (6) on an EVM rail and HKD (2) on a bank rail;
marks BTC 500,000 / ETH 20,000 / USDC 7.80 HKD; cap 100,000,000 HKD; a
reserve of 120,000,000 HKD; registered home accounts ``pro-1``
(professional), ``retail-in`` (retail, opted in) and ``retail-out`` (retail,
not opted in).
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

import factory
from django.utils import timezone

from registry.models import Account, Asset, Jurisdiction, Operator, OperatorAPIKey, Rail
from reserves.models import ReserveFund
from settlement.models import CapConfig


def jurisdiction(code: str, **facts) -> Jurisdiction:
    defaults = {"fatf_member": True, "iosco_aligned": True, "lists_as_of": date(2026, 2, 13)}
    defaults.update(facts)
    obj, _ = Jurisdiction.objects.update_or_create(code=code, defaults=defaults)
    return obj


class OperatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operator
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"OV{n}")
    name = factory.LazyAttribute(lambda o: f"{o.code} Exchange Ltd")
    role = Operator.Role.OVERSEAS
    jurisdiction = factory.LazyFunction(lambda: jurisdiction("SG"))
    licence = factory.LazyAttribute(lambda o: f"LIC-{o.code}")
    sfc_approval = factory.LazyAttribute(lambda o: f"SFC/SOB/2026/{o.code}")
    approved_on = date(2026, 1, 15)


class RailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rail
        django_get_or_create = ("code",)

    code = "eth"
    kind = Rail.Kind.EVM
    chain_id = 31337
    confirmations = 3
    window_minutes = 60


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset
        django_get_or_create = ("code",)

    code = "USDC"
    kind = Asset.Kind.CRYPTO
    scale = 6
    rail = factory.SubFactory(RailFactory)


def api_key(operator: Operator, *, scope: str, name: str | None = None) -> tuple[OperatorAPIKey, str]:
    return OperatorAPIKey.objects.create_key(operator=operator, scope=scope, name=name or f"{operator.code}-{scope}")


def set_mark(asset: Asset, price: str, *, as_of: datetime | None = None) -> Asset:
    asset.mark_hkd = Decimal(price)
    asset.mark_as_of = as_of or timezone.now()
    asset.mark_source = "test"
    asset.save()
    return asset


def set_reserve(amount: str, *, reference: str = "opening") -> ReserveFund:
    """A contribution through the ledger service, so the effective cap follows."""
    from reserves.services.ledger import reserve_contribute

    fund, _ = ReserveFund.objects.get_or_create(trustee="Harbour Trustee Ltd", deed="TD-2026-01")
    reserve_contribute(amount_hkd=amount, reference=reference, actor="test", now=timezone.now())
    return fund


def set_cap(total: str, **thresholds) -> CapConfig:
    cap, _ = CapConfig.objects.update_or_create(
        singleton=True, defaults={"total_hkd": Decimal(total), "updated_at": timezone.now(), **thresholds}
    )
    return cap


@dataclass
class Network:
    home: Operator
    sg1: Operator
    jp1: Operator
    btc: Asset
    eth: Asset
    usdc: Asset
    hkd: Asset


def build_network(*, cap: str = "100000000", reserve: str | None = "120000000") -> Network:
    jurisdiction("HK")
    home = OperatorFactory(
        code="HK1", role=Operator.Role.HOME, jurisdiction=jurisdiction("HK"), sfc_approval="", approved_on=None
    )
    sg1 = OperatorFactory(code="SG1", jurisdiction=jurisdiction("SG"))
    jp1 = OperatorFactory(code="JP1", jurisdiction=jurisdiction("JP"))
    eth_rail = RailFactory(code="eth")
    bank = RailFactory(
        code="hkd-chats",
        kind=Rail.Kind.BANK,
        chain_id=None,
        confirmations=None,
        currency="HKD",
        calendars=["HK"],
        cutoff=time(17, 30),
        timezone="Asia/Hong_Kong",
        weekend=[6, 7],
        window_minutes=1440,
    )
    btc = AssetFactory(code="BTC", scale=8, rail=eth_rail)
    eth = AssetFactory(code="ETH", scale=18, rail=eth_rail)
    usdc = AssetFactory(code="USDC", scale=6, rail=eth_rail)
    hkd = AssetFactory(code="HKD", kind=Asset.Kind.FIAT, scale=2, rail=bank)
    set_mark(btc, "500000")
    set_mark(eth, "20000")
    set_mark(usdc, "7.80")
    set_cap(cap)
    if reserve is not None:
        set_reserve(reserve)
    Account.objects.get_or_create(operator=home, ref="pro-1", defaults={"client_class": "professional"})
    Account.objects.get_or_create(
        operator=home,
        ref="retail-in",
        defaults={"client_class": "retail", "shared_book_opt_in": True, "disclosure_version": "v1"},
    )
    Account.objects.get_or_create(operator=home, ref="retail-out", defaults={"client_class": "retail"})
    return Network(home, sg1, jp1, btc, eth, usdc, hkd)


_trade_seq = iter(range(1, 10**9))


def trade(
    *,
    trade_id: str | None = None,
    base: str = "BTC",
    quote: str = "HKD",
    price: str = "500000",
    quantity: str = "1",
    buy: tuple[str, str] = ("HK1", "pro-1"),
    sell: tuple[str, str] = ("SG1", "sg-client-1"),
    executed_at: str | None = None,
) -> dict:
    """A TRADE item exactly as the matching engine sends it."""
    return {
        "trade_id": trade_id or f"T{next(_trade_seq):08d}",
        "base_asset": base,
        "quote_asset": quote,
        "price": price,
        "quantity": quantity,
        "buy": {"operator": buy[0], "account": buy[1]},
        "sell": {"operator": sell[0], "account": sell[1]},
        "executed_at": executed_at or timezone.now().isoformat(),
    }
