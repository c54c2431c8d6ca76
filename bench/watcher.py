#!/usr/bin/env python
"""The chain watcher at scale: 10,000 ERC-20 transfers on anvil ingested by
one poll. Prints figures; never passes or fails on time.

Set-up (not timed): anvil on a free loopback port; the committed TestToken
(custody/contracts/TestToken.json) deployed and minted to the counterparties'
wallets; then N transfers (default 10,000) between home's wallet and the
counterparties' (SG1, JP1, GB1), both ways, sent as ``batchTransfer`` calls of
50 transfers each, one transaction per block. In its own database
(``settlement_bench_watcher``): the bench network and an evm rail on anvil
whose only asset is the token, its cursor just before the first transfer.

Timed:

1. The physical limit: one raw ``eth_getLogs`` over plain HTTP for the
   token's Transfer logs in the same blocks, the logs decoded (topics and
   data) into the columns we store, and a COPY of them into a plain table
   (a primary key, nothing else), committed (``raw_s``).
2. ``chain_poll`` of the rail, without reconciliation (``poll_s``): the
   watcher's own eth_getLogs (from and to the registered wallets), the block
   headers a reorg may still replace, the movements stored, the cursor moved.
   Every transfer must be stored once (``seen``, or ``final`` when already
   deep enough).

``--profile`` runs pyinstrument and auto_explain over the poll (then the
figure is not reported: the profiler slows it down).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import benchkit  # noqa: E402
import benchnet  # noqa: E402
import profiling  # noqa: E402
from benchkit import BenchError  # noqa: E402

ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ARTIFACT = ROOT / "custody" / "contracts" / "TestToken.json"
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
PER_CALL = 50
RAW_DDL = """
CREATE TABLE limit_transfer (
    id bigint PRIMARY KEY, chain_id bigint, tx_hash varchar(66), log_index integer, block_number bigint,
    block_hash varchar(66), token varchar(42), from_address varchar(42), to_address varchar(42),
    amount numeric(38, 18), occurred_at timestamptz
)"""


class Anvil:
    """anvil on a free loopback port, stopped by its own pid."""

    def __init__(self) -> None:
        if not ANVIL.exists():
            raise BenchError(f"anvil is not installed at {ANVIL}: run make install (npm ci)")
        self.log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(ANVIL), "--port", "0", "--host", "127.0.0.1", "--gas-limit", "300000000"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + 30
        self.url = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(r"Listening on (127\.0\.0\.1:\d+)", Path(self.log.name).read_text(errors="replace"))
            if match:
                self.url = f"http://{match.group(1)}"
                return
            time.sleep(0.05)
        self.stop()
        raise BenchError("anvil did not start")

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


def transfers_send(url: str, count: int) -> dict:
    """Deploy the token, mint, and send ``count`` transfers; returns the
    token, the wallets and the block range of the transfers."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    artifact = json.loads(ARTIFACT.read_text())
    accounts = w3.eth.accounts
    deployer, home, *counterparties = accounts[:5]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor("Bench USD", "BUSD", 6).transact({"from": deployer})
    )
    token = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    for holder in (home, *counterparties):
        w3.eth.wait_for_transaction_receipt(token.functions.mint(holder, 10**15).transact({"from": deployer}))
    first = w3.eth.block_number + 1
    sent = 0
    k = 0
    while sent < count:
        n = min(PER_CALL, count - sent)
        sender = counterparties[k % 3] if k % 2 == 0 else home
        receivers = [home] * n if sender != home else [counterparties[(k + i) % 3] for i in range(n)]
        units = [1_000_000 + sent + i for i in range(n)]  # 1.000001 ... each amount distinct
        tx = token.functions.batchTransfer(receivers, units).transact({"from": sender, "gas": 5_000_000})
        sent += n
        k += 1
        if k % 20 == 0:
            w3.eth.wait_for_transaction_receipt(tx)
    w3.eth.wait_for_transaction_receipt(tx)
    return {
        "token": token.address.lower(),
        "home": home.lower(),
        "counterparties": [c.lower() for c in counterparties],
        "first_block": first,
        "last_block": w3.eth.block_number,
        "chain_id": w3.eth.chain_id,
        "calls": k,
    }


def raw_limit(*, url: str, node: str, chain: dict) -> dict:
    """One eth_getLogs over plain HTTP, decoded, COPYed into a plain table, committed."""
    import psycopg

    parts = urlsplit(node)
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getLogs",
            "params": [
                {
                    "fromBlock": hex(chain["first_block"]),
                    "toBlock": hex(chain["last_block"]),
                    "address": chain["token"],
                    "topics": [TRANSFER_TOPIC],
                }
            ],
        }
    )
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS limit_transfer")
        conn.execute(RAW_DDL)
        conn.commit()
        http_conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        started = time.perf_counter()
        http_conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        logs = json.loads(http_conn.getresponse().read())["result"]
        fetched = time.perf_counter()
        chain_id = chain["chain_id"]
        with conn.cursor() as cursor, cursor.copy("COPY limit_transfer FROM STDIN") as copy:
            for i, log in enumerate(logs, start=1):
                topics = log["topics"]
                copy.write_row(
                    (
                        i,
                        chain_id,
                        log["transactionHash"],
                        int(log["logIndex"], 16),
                        int(log["blockNumber"], 16),
                        log["blockHash"],
                        log["address"],
                        "0x" + topics[1][-40:],
                        "0x" + topics[2][-40:],
                        Decimal(int(log["data"][2:66], 16)).scaleb(-6),
                        datetime.fromtimestamp(int(log["blockTimestamp"], 16), tz=UTC),
                    )
                )
        conn.commit()
        seconds = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM limit_transfer").fetchone()[0]
        conn.execute("DROP TABLE limit_transfer")
        conn.commit()
        http_conn.close()
    return {"logs": len(logs), "stored": stored, "get_logs_s": fetched - started, "raw_s": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", action="store_true", help="the poll under pyinstrument and auto_explain")
    args = parser.parse_args(argv)
    url = benchkit.database_url("watcher")
    step = benchkit.Steps()
    load_before = benchkit.load_average()
    step(f"database {url.rsplit('/', 1)[1]}: drop, create, migrate")
    env = benchkit.database_prepare(url)
    benchkit.django_setup(env)
    from django.db import connection

    anvil = Anvil()
    try:
        step(f"anvil at {anvil.url}: token, mints, {args.transfers:,} transfers in calls of {PER_CALL}")
        chain = transfers_send(anvil.url, args.transfers)
        step(f"  blocks {chain['first_block']}..{chain['last_block']} ({chain['calls']} calls)")

        from custody.models import ChainCursor, Movement
        from custody.services.chain import chain_poll
        from registry.models import Asset, Operator, Rail, Wallet

        benchnet.network_build()
        rail = Rail.objects.create(
            code="bench-evm",
            kind=Rail.Kind.EVM,
            chain_id=chain["chain_id"],
            rpc_url=anvil.url,
            confirmations=12,
            window_minutes=60,
            start_block=chain["first_block"],
        )
        Asset.objects.create(code="BUSD", kind="crypto", scale=6, rail=rail, contract=chain["token"])
        operators = {o.code: o for o in Operator.objects.all()}
        Wallet.objects.create(operator=operators[benchnet.HOME], rail=rail, address=chain["home"])
        for code, address in zip(benchnet.COUNTERPARTIES, chain["counterparties"], strict=False):
            Wallet.objects.create(operator=operators[code], rail=rail, address=address)
        ChainCursor.objects.create(rail=rail, block_number=chain["first_block"] - 1)
        connection.close()

        step("the physical limit: one raw eth_getLogs, decoded, COPY into a plain table")
        raw = raw_limit(url=url, node=anvil.url, chain=chain)
        step(f"  {raw['raw_s']:.3f} s for {raw['logs']:,} logs (eth_getLogs {raw['get_logs_s']:.3f} s)")
        if raw["logs"] != args.transfers:
            raise BenchError(f"the node returned {raw['logs']} Transfer logs for {args.transfers} transfers")

        now = datetime.now(UTC)
        step("chain_poll (no reconciliation)")
        if args.profile:
            with profiling.Profile("watcher", explain_ms=20) as prof:
                started = time.perf_counter()
                poll = chain_poll(rail_code=rail.code, now=now, reconcile=False)
                poll_s = time.perf_counter() - started
            prof.write()
        else:
            started = time.perf_counter()
            poll = chain_poll(rail_code=rail.code, now=now, reconcile=False)
            poll_s = time.perf_counter() - started
        stored = Movement.objects.filter(rail=rail).count()
        step(f"  {poll_s:.3f} s: {poll.new:,} new movements, {stored:,} stored")
        if poll.error or stored != args.transfers or poll.new != args.transfers:
            raise BenchError(f"the poll stored {stored} of {args.transfers} transfers: {poll.as_json()}")

        result = {
            "date": benchkit.now_iso(),
            "machine": benchkit.machine(),
            "postgres": benchkit.server_settings(url),
            "load_average_before": load_before,
            "load_average_after": benchkit.load_average(),
            "params": vars(args),
            "chain": chain,
            **raw,
            "poll_s": poll_s,
            "profiled": args.profile,
            "movements": stored,
        }
        result["summary"] = [
            benchkit.row(
                f"watcher: {args.transfers:,} ERC-20 transfers in one poll (limit: raw eth_getLogs + COPY)",
                ours=poll_s,
                limit=raw["raw_s"],
                unit="s",
                target="<= 2",
            )
        ]
        print()
        for key in ("logs", "get_logs_s", "raw_s", "poll_s"):
            print(f"{key}={result[key]}")
        print()
        print("\n".join(benchkit.summary_lines(result["summary"])))
        path = benchkit.result_write("watcher", result)
        print(f"figures written to {path} ({step.elapsed:.0f} s in all)")
        return 0
    finally:
        anvil.stop()
        connection.close()
        if not args.keep_db:
            benchkit.database_drop(url)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
