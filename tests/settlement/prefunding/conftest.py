"""A network under prefunding: HK1 and SG1 each with a designated custodian
wallet (eth rail: BTC, ETH, USDC) and a designated bank account (HKD),
attested far above anything the tests fund, and helpers to fund accounts
and place holds through the services the API calls."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from registry.models import BankAccount, Operator, Rail, Wallet
from settlement.services.prefunding import AttestationLine, attestations_record, funding_event_record, holds_place
from tests import factories
from tests.conftest import api_client_for

ATTESTED = Decimal("1000000000")
_events = iter(range(1, 10**9))


@dataclass
class Prefunding:
    network: factories.Network
    wallets: dict[str, Wallet]
    accounts: dict[str, BankAccount]

    def designate(self, operator: str) -> None:
        """A designated wallet and bank account for ``operator`` (not attested yet)."""
        owner = Operator.objects.get(code=operator)
        n = len(self.wallets) + 1
        self.wallets[operator] = Wallet.objects.create(
            operator=owner, rail=Rail.objects.get(code="eth"), address=f"0x{n:040x}", designated=True
        )
        self.accounts[operator] = BankAccount.objects.create(
            operator=owner,
            rail=Rail.objects.get(code="hkd-chats"),
            number=f"012-000-{n}",
            bank="Example Bank",
            designated=True,
        )

    def attest(self, operator: str, asset: str, amount: Decimal | str, *, as_of=None, reference: str | None = None):
        """The designated holder of ``operator`` on ``asset``'s rail reports ``amount``."""
        asset_row = getattr(self.network, asset.lower())
        holder = (
            {"wallet_id": self.wallets[operator].id}
            if asset != "HKD"
            else {"bank_account_id": self.accounts[operator].id}
        )
        now = timezone.now()
        return attestations_record(
            lines=[
                AttestationLine(
                    operator_id=self.wallets[operator].operator_id,
                    asset_id=asset_row.id,
                    amount=Decimal(amount),
                    **holder,
                )
            ],
            source="balance_report",
            reference=reference or f"test-{next(_events)}",
            as_of=as_of or now,
            actor="test",
            now=now,
        )

    def fund(
        self,
        operator: str,
        account: str,
        asset: str,
        amount: str,
        *,
        kind: str = "deposit",
        reference: str = "",
        event_id: str | None = None,
    ):
        result, _ = funding_event_record(
            item={
                "event_id": event_id or f"E{next(_events)}",
                "account": account,
                "asset": asset,
                "kind": kind,
                "amount": amount,
                "occurred_at": timezone.now().isoformat(),
                "reference": reference,
            },
            operator=operator,
            actor="test",
            now=timezone.now(),
        )
        return result

    def hold(
        self, order_id: str, amount: str, *, operator: str = "HK1", account: str = "pro-1", asset: str = "HKD", **extra
    ):
        item = {
            "order_id": order_id,
            "operator": operator,
            "account": account,
            "asset": asset,
            "amount": amount,
            **extra,
        }
        return holds_place(items=[item], actor="test", now=extra.pop("now", None) or timezone.now())[0]


def prefunding_network() -> Prefunding:
    network = factories.build_network()
    pf = Prefunding(network, {}, {})
    for operator in ("HK1", "SG1"):
        pf.designate(operator)
    for operator in ("HK1", "SG1"):
        for asset in ("BTC", "ETH", "USDC", "HKD"):
            pf.attest(operator, asset, ATTESTED)
    return pf


@pytest.fixture
def pf(db):
    return prefunding_network()


@pytest.fixture
def engine(pf):
    return api_client_for(pf.network.home, scope="engine")


@pytest.fixture
def sg1_client(pf):
    return api_client_for(pf.network.sg1, scope="operator")


def later(**kwargs):
    return timezone.now() + timedelta(**kwargs)


__all__ = ["ATTESTED", "Operator", "Prefunding", "later", "prefunding_network"]
