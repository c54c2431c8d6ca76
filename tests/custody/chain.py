"""Test chains for the custody tests: web3's in-process EthereumTesterProvider
and anvil (a real node, from the npm package @foundry-rs/anvil), with the
committed TestToken artifact, and a test rail ``tchain`` on it.

Wallets: accounts[0] deploys and mints; accounts[1] is home's (HK1) hot
wallet, accounts[2] SG1's, accounts[3] JP1's; accounts[4] is a stranger.
Assets on the rail: TUSD (the token, 6 decimals) and TETH (the native coin).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from web3 import Web3

from custody.services.chain import PollResult, chain_poll
from registry.models import Asset, Operator, Rail, Wallet
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.factories import set_mark, trade

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = json.loads((ROOT / "custody" / "contracts" / "TestToken.json").read_text())
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
TUSD = 10**6
TETH = 10**18


@dataclass
class Chain:
    w3: Web3
    token: object
    rail: Rail
    tusd: Asset
    teth: Asset
    deployer: str
    home: str
    sg1: str
    jp1: str
    stranger: str
    real_node: bool

    def mine(self, blocks: int = 1) -> None:
        if self.real_node:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        else:
            self.w3.testing.mine(blocks)

    def mint(self, to: str, units: int) -> str:
        return self._wait(self.token.functions.mint(to, units).transact({"from": self.deployer}))

    def transfer(self, sender: str, to: str, units: int) -> str:
        return self._wait(self.token.functions.transfer(to, units).transact({"from": sender}))

    def batch_transfer(self, sender: str, to: list[str], units: list[int]) -> str:
        return self._wait(self.token.functions.batchTransfer(to, units).transact({"from": sender}))

    def send(self, sender: str, to: str, wei: int) -> str:
        return self._wait(self.w3.eth.send_transaction({"from": sender, "to": to, "value": wei}))

    def _wait(self, tx) -> str:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=10)
        assert receipt["status"] == 1
        return "0x" + bytes(receipt["transactionHash"]).hex()

    @property
    def head(self) -> int:
        return self.w3.eth.block_number

    def poll(self, now: datetime | None = None, **kwargs) -> PollResult:
        return chain_poll(rail_code=self.rail.code, now=now or timezone.now(), w3=self.w3, **kwargs)


def setup_chain(w3: Web3, network, *, confirmations: int = 3, real_node: bool = False, rpc_url: str = "") -> Chain:
    accounts = w3.eth.accounts
    deployer = accounts[0]
    factory = w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor("Test USD", "TUSD", 6).transact({"from": deployer}), timeout=10
    )
    token = w3.eth.contract(address=receipt["contractAddress"], abi=ARTIFACT["abi"])
    rail = Rail.objects.create(
        code="tchain",
        kind=Rail.Kind.EVM,
        chain_id=w3.eth.chain_id,
        rpc_url=rpc_url,
        confirmations=confirmations,
        window_minutes=60,
        start_block=w3.eth.block_number + 1,
    )
    tusd = Asset.objects.create(code="TUSD", kind="crypto", scale=6, rail=rail, contract=token.address.lower())
    teth = Asset.objects.create(code="TETH", kind="crypto", scale=18, rail=rail)
    set_mark(tusd, "7.80")
    set_mark(teth, "20000")
    home = Operator.objects.get(code="HK1")
    for operator, address in ((home, accounts[1]), (network.sg1, accounts[2]), (network.jp1, accounts[3])):
        Wallet.objects.create(operator=operator, rail=rail, address=address.lower(), temperature="hot")
    return Chain(
        w3=w3,
        token=token,
        rail=rail,
        tusd=tusd,
        teth=teth,
        deployer=deployer,
        home=accounts[1],
        sg1=accounts[2],
        jp1=accounts[3],
        stranger=accounts[4],
        real_node=real_node,
    )


def in_process_web3() -> Web3:
    return Web3(Web3.EthereumTesterProvider())


def sell_teth_for_tusd(*, at: datetime, quantity: str = "1", price: str = "2500", counterparty: str = "SG1"):
    """Home sells TETH to the counterparty for TUSD: an inbound TUSD leg and an
    outbound TETH leg. Returns the cycle run at ``at``."""
    item = trade(
        base="TETH", quote="TUSD", price=price, quantity=quantity, buy=(counterparty, "c-1"), sell=("HK1", "pro-1")
    )
    item["executed_at"] = (at - timedelta(minutes=1)).isoformat()
    result = trades_ingest(items=[item], actor="engine", now=at - timedelta(seconds=30))
    assert not result.rejected, result.rejected
    return cycle_run(kind="intraday", as_of=at, actor="test")


# --- anvil ----------------------------------------------------------------------------------------


def anvil_path() -> Path | None:
    if ANVIL.exists():
        return ANVIL
    found = shutil.which("anvil")
    return Path(found) if found else None


requires_anvil = pytest.mark.skipif(
    anvil_path() is None,
    reason="anvil is not installed: run `npm ci` (make test does) to get @foundry-rs/anvil into node_modules/",
)


class Anvil:
    """An anvil process on a free loopback port."""

    def __init__(self):
        binary = anvil_path()
        assert binary is not None
        # its output goes to a file (a pipe nobody drains would block it)
        self.log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(binary), "--port", "0", "--host", "127.0.0.1"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + 20
        self.url = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(r"Listening on (127\.0\.0\.1:\d+)", Path(self.log.name).read_text(errors="replace"))
            if match:
                self.url = f"http://{match.group(1)}"
                break
            time.sleep(0.02)
        if not self.url:
            self.stop()
            raise RuntimeError(f"anvil did not start: {Path(self.log.name).read_text(errors='replace')[-500:]}")

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def units(amount: str, scale: int) -> int:
    return int(Decimal(amount).scaleb(scale))
