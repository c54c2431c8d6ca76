#!/usr/bin/env python
"""Reconciliation at scale: 100,000 observed movements against 10,000 open
legs. Prints figures; never passes or fails on time.

Set-up (not timed), in its own database (``settlement_bench_reconcile``): the
bench network, 2,500 open receive-first batches of 4 instructed legs each
(BTC, ETH and USDC on the chain rail, HKD on the bank rail; inbound or
outbound at random, every leg already instructed, as after the inbound ones
were seen: the matcher pairs instructed legs whatever the policy; their
instructions written), and 100,000 movements, COPYed in:

- for 9,700 legs one final movement of exactly the leg (one-to-one);
- for 100 legs two final movements that add up to it (many-to-one);
- for one inbound leg per counterparty and asset (12) one final movement of
  90 % of it (a short delivery);
- the other legs: inbound ones paid in full, outbound ones still to be paid
  (before their deadline);
- 100 final receipts from unregistered senders (unmatched receipts);
- 40,000 movements of earlier cycles, already linked to their settled legs;
- the rest: home's own sweeps, gas fees and transfers between counterparties
  that home watches but is not part of (internal, fee, external).

Timed:

1. The physical limit, on the same rows before reconciling: the raw SQL join
   that pairs each open leg with the unlinked live movements of its asset,
   counterparty, direction and amount (``raw_join_s``); and, in a transaction
   rolled back afterwards, that join plus the two UPDATEs a match cannot do
   without: the link on each movement and the state of each leg
   (``raw_join_writes_s``).
2. ``reconcile_run`` (``reconcile_s``): match, confirm (each batch whose legs
   are all confirmed settles), breaks, outbox; then a second run, which finds
   nothing new (``reconcile_again_s``: what every poll costs at this size).
   ``matching_s`` is its one-to-one and many-to-one phases (pairing,
   locking, linking, legs confirmed, evidence, audit), without the batches
   those legs complete (``phases_s["batches"]``: releasing and settling
   them, batch by batch in settlement's cycle services).

``--profile`` runs the reconciliation once more first, under pyinstrument and
auto_explain, in a transaction rolled back afterwards (bench/out/reconcile-profile.*).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import benchkit  # noqa: E402
import benchnet  # noqa: E402
import profiling  # noqa: E402
from benchkit import BenchError  # noqa: E402

ASSETS = ("BTC", "ETH", "USDC", "HKD")
CHAIN_ID = 31337
RAW_JOIN = """
SELECT l.id, m.id
FROM settlement_leg l
JOIN settlement_batch b ON b.id = l.batch_id
JOIN custody_movement m ON m.asset_id = l.asset_id AND m.counterparty_id = b.counterparty_id
                       AND m.direction = l.direction AND m.amount = l.amount
WHERE l.status = 'instructed' AND m.leg_id IS NULL AND m.status IN ('seen', 'final')
"""
MOVEMENT_COLUMNS = (
    "source",
    "rail_id",
    "asset_id",
    "amount",
    "direction",
    "counterparty_id",
    "status",
    "occurred_at",
    "seen_at",
    "final_at",
    "chain_id",
    "tx_hash",
    "log_index",
    "block_number",
    "block_hash",
    "token",
    "from_address",
    "to_address",
    "from_wallet_id",
    "to_wallet_id",
    "account_id",
    "side",
    "entry_ref",
    "bank_reference",
    "customer_reference",
    "counterparty_account",
    "booking_date",
    "details",
    "leg_id",
    "matched_at",
)
# text columns are NOT NULL with a blank default; the rest may be NULL
BLANK = {
    c: ""
    for c in MOVEMENT_COLUMNS
    if c
    in (
        "tx_hash",
        "block_hash",
        "token",
        "from_address",
        "to_address",
        "side",
        "entry_ref",
        "bank_reference",
        "customer_reference",
        "counterparty_account",
        "details",
    )
}


def amount_at(rng: random.Random, scale: int) -> Decimal:
    """1 to 1,000,000 at the asset's scale: amounts seldom repeat, so a
    movement names its leg (as a real payment's amount nearly always does)."""
    return Decimal(rng.randint(10**scale, 10 ** (scale + 6))).scaleb(-scale)


class Setup:
    """Builds the legs and the movements (see the module doc)."""

    def __init__(self, *, legs: int, movements: int, history: int, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.legs, self.movements, self.history, self.now = legs, movements, history, now
        self.rows: list[tuple] = []
        self.sequence = 0
        self.expected: dict[str, int] = {}

    def build(self) -> None:
        from django.db import connection

        from custody.models import Instruction
        from custody.services.instructions import instruction_reference
        from registry.models import Asset, BankAccount, Operator, Rail, Wallet
        from settlement.models import Batch, Cycle, Leg

        now = self.now
        operators = {o.code: o for o in Operator.objects.all()}
        self.home = operators[benchnet.HOME]
        self.counterparties = [operators[c] for c in benchnet.COUNTERPARTIES]
        self.assets = {a.code: a for a in Asset.objects.filter(code__in=ASSETS)}
        eth = Rail.objects.get(code="eth")
        eth.rpc_url = "http://127.0.0.1:9"  # never called: reconciliation reads the database only
        eth.save(update_fields=["rpc_url"])
        bank = Rail.objects.get(code="hkd-chats")
        Rail.objects.filter(kind=Rail.Kind.BANK).update(kind=Rail.Kind.MANUAL, calendars=[], cutoff=None)
        self.wallets = {
            o.code: Wallet.objects.create(operator=o, rail=eth, address="0x" + f"{i + 1:040x}")
            for i, o in enumerate([self.home, *self.counterparties])
        }
        self.stranger = "0x" + "e" * 40
        self.accounts = {
            o.code: BankAccount.objects.create(operator=o, rail=bank, number=f"{o.code}-001", bank="Bench Bank")
            for o in [self.home, *self.counterparties]
        }
        # receive-first: escrow legs are delivered to an escrow custodian's
        # holding wallet and locked there, which these movements are not
        Operator.objects.filter(pk__in=[o.id for o in self.counterparties]).update(
            dvp_policy=Operator.DvpPolicy.RECEIVE_FIRST
        )

        instructed = now - timedelta(hours=1)
        per_batch = len(ASSETS)
        batches_open = self.legs // per_batch
        history_batches = self.history // per_batch
        cycles = Cycle.objects.bulk_create(
            [
                Cycle(
                    kind="intraday",
                    as_of=instructed - timedelta(minutes=k),
                    status="done",
                    requested_by="bench",
                    started_at=instructed - timedelta(minutes=k),
                    finished_at=instructed - timedelta(minutes=k),
                )
                for k in range((batches_open + history_batches) // len(self.counterparties) + 2)
            ]
        )
        batches = []
        for k in range(batches_open + history_batches):
            settled = k >= batches_open
            batches.append(
                Batch(
                    cycle=cycles[k // len(self.counterparties)],
                    counterparty=self.counterparties[k % len(self.counterparties)],
                    dvp_policy=Operator.DvpPolicy.RECEIVE_FIRST,
                    status="settled" if settled else "open",
                    created_at=instructed,
                    settled_at=now - timedelta(days=1) if settled else None,
                )
            )
        batches = Batch.objects.bulk_create(batches, batch_size=2000)
        legs = []
        for k, batch in enumerate(batches):
            settled = k >= batches_open
            for code in ASSETS:
                asset = self.assets[code]
                legs.append(
                    Leg(
                        batch=batch,
                        asset=asset,
                        direction=self.rng.choice(("inbound", "outbound")),
                        amount=amount_at(self.rng, asset.scale),
                        status="confirmed" if settled else "instructed",
                        value_date=now.date(),
                        deadline=now + timedelta(days=1),
                        instructed_at=instructed,
                        confirmed_at=now - timedelta(days=1) if settled else None,
                        confirmed_by="bench" if settled else "",
                    )
                )
        legs = Leg.objects.bulk_create(legs, batch_size=2000)
        open_legs = [leg for leg in legs if leg.status == "instructed"]
        history_legs = [leg for leg in legs if leg.status == "confirmed"]
        self.open_legs = open_legs
        # what instructions_write would have written when the legs were
        # instructed (one bulk insert: the service writes them one by one)
        Instruction.objects.bulk_create(
            [
                Instruction(
                    leg=leg,
                    asset=leg.asset,
                    amount=leg.amount,
                    rail_id=leg.asset.rail_id,
                    from_ref="",
                    to_ref="",
                    counterparty=leg.batch.counterparty,
                    reference=instruction_reference(leg),
                    deadline=leg.deadline,
                    created_at=instructed,
                )
                for leg in open_legs
                if leg.direction == "outbound"
            ],
            batch_size=2000,
        )

        # Legs are matched one by one (hints, many-to-one) in instruction
        # order, then id; many-to-one takes the shortest run of candidates
        # in time order. So the parts of each many-to-one leg come in the
        # order of the legs' ids, and the short deliveries come last, on the
        # highest ids: each leg then finds its own movements first.
        self.rng.shuffle(open_legs)
        one, many, short = 9_700 * self.legs // 10_000, 100 * self.legs // 10_000, 50 * self.legs // 10_000
        for leg in open_legs[:one]:
            self.movement(leg=leg, amount=leg.amount)
        rest = sorted(open_legs[one:], key=lambda leg: leg.id)
        # a short delivery is judged against everything final the
        # counterparty sent in that asset: one per counterparty and asset
        last_inbound = {(leg.asset_id, leg.batch.counterparty_id): leg for leg in rest if leg.direction == "inbound"}
        shorts = sorted(last_inbound.values(), key=lambda leg: leg.id)[:short]
        rest = [leg for leg in rest if leg not in shorts]
        for k, leg in enumerate(rest[:many]):
            part = (leg.amount * Decimal("0.4")).quantize(leg.asset.quantum)
            self.movement(leg=leg, amount=part, seconds=600 + 2 * k)
            self.movement(leg=leg, amount=leg.amount - part, seconds=601 + 2 * k)
        for k, leg in enumerate(shorts):
            self.movement(leg=leg, amount=(leg.amount * Decimal("0.9")).quantize(leg.asset.quantum), seconds=1200 + k)
        # the rest: outbound legs still to be paid; an inbound one would see
        # another leg's short delivery as its own, so it is paid in full
        paid = [leg for leg in rest[many:] if leg.direction == "inbound"]
        for leg in paid:
            self.movement(leg=leg, amount=leg.amount)
        self.expected = {"confirmed": one + many + len(paid), "short_delivery": len(shorts)}
        strangers = 100 * self.movements // 100_000
        for _ in range(strangers):
            code = self.rng.choice(ASSETS)
            self.movement(asset=self.assets[code], direction="inbound", counterparty=None, stranger=True)
        self.expected["unmatched_receipt"] = strangers
        for leg in history_legs[: self.history]:
            self.movement(leg=leg, amount=leg.amount, linked=True, minutes=60 * 24 + 50)
        noise = self.movements - len(self.rows)
        for k in range(noise):
            code = self.rng.choice(ASSETS)
            kind = ("internal", "fee", "external")[k % 3]
            cp = self.rng.choice(self.counterparties) if kind == "external" else None
            self.movement(asset=self.assets[code if kind != "fee" else "ETH"], direction=kind, counterparty=cp)
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY custody_movement ({', '.join(MOVEMENT_COLUMNS)}) FROM STDIN") as copy:
                for r in self.rows:
                    copy.write_row(r)
            cursor.execute("VACUUM ANALYZE custody_movement")
            cursor.execute("VACUUM ANALYZE settlement_leg")

    def movement(
        self,
        *,
        leg=None,
        amount: Decimal | None = None,
        asset=None,
        direction: str | None = None,
        counterparty=None,
        stranger: bool = False,
        linked: bool = False,
        minutes: int = 50,
        seconds: int | None = None,
    ) -> None:
        self.sequence += 1
        n = self.sequence
        if leg is not None:
            asset, direction, counterparty = leg.asset, leg.direction, leg.batch.counterparty
        assert asset is not None and direction is not None
        if amount is None:
            amount = amount_at(self.rng, asset.scale)
        # one-to-one and the rest between 50 and 40 minutes ago; timed ones
        # (many-to-one parts, short deliveries) after that, in their order
        at = self.now - timedelta(minutes=minutes) + timedelta(seconds=n % 600 if seconds is None else seconds)
        home = benchnet.HOME
        cp_code = counterparty.code if counterparty is not None else None
        if direction == "inbound":
            ends = (cp_code, home)
        elif direction == "outbound":
            ends = (home, cp_code)
        elif direction == "external":
            other = next(c.code for c in self.counterparties if c.code != cp_code)
            ends = (cp_code, other)
        else:  # internal, fee
            ends = (home, home if direction == "internal" else None)
        common = {
            "rail_id": asset.rail_id,
            "asset_id": asset.id,
            "amount": amount,
            "direction": direction,
            "counterparty_id": counterparty.id if counterparty else None,
            "status": "final",
            "occurred_at": at,
            "seen_at": at,
            "final_at": at,
            "leg_id": leg.id if linked else None,
            "matched_at": self.now - timedelta(days=1) if linked else None,
        }
        if asset.code == "HKD":
            row = {
                **common,
                "source": "bank",
                "account_id": self.accounts[home].id,
                "side": "credit" if direction == "inbound" else "debit",
                "entry_ref": f"E{n:09d}",
                "bank_reference": f"B{n:09d}",
                "booking_date": at.date(),
                "details": "bench",
            }
        else:
            row = {
                **common,
                "source": "chain",
                "chain_id": CHAIN_ID,
                "tx_hash": f"0x{n:064x}",
                "log_index": -2 if direction == "fee" else n % 50,
                "block_number": 1_000_000 + n // 20,
                "block_hash": f"0x{n // 20:064x}",
                "from_address": self.stranger if stranger or not ends[0] else self.wallets[ends[0]].address,
                "to_address": self.wallets[ends[1]].address if ends[1] else "",
                "from_wallet_id": None if stranger or not ends[0] else self.wallets[ends[0]].id,
                "to_wallet_id": self.wallets[ends[1]].id if ends[1] else None,
            }
        self.rows.append(tuple(row.get(column, BLANK.get(column)) for column in MOVEMENT_COLUMNS))


def raw_limits(url: str) -> dict:
    """The raw join alone, then the join plus the writes a match needs (rolled back)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        pairs = conn.execute(RAW_JOIN).fetchall()
        join_s = time.perf_counter() - started
        conn.rollback()
        started = time.perf_counter()
        conn.execute(
            f"CREATE TEMP TABLE raw_pairs ON COMMIT DROP AS {RAW_JOIN}".replace(
                "SELECT l.id, m.id", "SELECT l.id AS leg_id, m.id AS movement_id"
            )
        )
        conn.execute(
            "UPDATE custody_movement m SET leg_id = p.leg_id, matched_at = now() FROM raw_pairs p WHERE m.id = p.movement_id"
        )
        conn.execute(
            "UPDATE settlement_leg l SET status = 'confirmed', confirmed_at = now() "
            "WHERE l.id IN (SELECT leg_id FROM raw_pairs)"
        )
        writes_s = time.perf_counter() - started
        conn.rollback()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE custody_movement")
        conn.execute("VACUUM ANALYZE settlement_leg")
    return {"pairs": len(pairs), "raw_join_s": join_s, "raw_join_writes_s": writes_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=10_000)
    parser.add_argument("--movements", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=40_000, help="movements already linked to settled legs")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="one more run first, under pyinstrument and auto_explain"
    )
    args = parser.parse_args(argv)
    url = benchkit.database_url("reconcile")
    step = benchkit.Steps()
    load_before = benchkit.load_average()
    step(f"database {url.rsplit('/', 1)[1]}: drop, create, migrate")
    env = benchkit.database_prepare(url)
    benchkit.django_setup(env)
    from django.db import connection, transaction

    from custody.models import Break, Movement
    from custody.services.reconcile import reconcile_run
    from settlement.models import Batch, Leg

    try:
        now = datetime.now(UTC)
        step("network, legs and movements (COPY)")
        benchnet.network_build()
        setup = Setup(legs=args.legs, movements=args.movements, history=args.history, seed=args.seed, now=now)
        setup.build()
        counts = {
            "movements": Movement.objects.count(),
            "open_legs": Leg.objects.filter(status="instructed").count(),
            "open_batches": Batch.objects.filter(status="open").count(),
        }
        step(
            f"  {counts['movements']:,} movements, {counts['open_legs']:,} open legs in {counts['open_batches']:,} batches"
        )
        connection.close()

        step("the physical limit: the raw join, and the join with the link and leg writes (rolled back)")
        raw = raw_limits(url)
        step(
            f"  join {raw['raw_join_s']:.3f} s ({raw['pairs']:,} pairs); with the writes {raw['raw_join_writes_s']:.3f} s"
        )

        if args.profile:
            step("profile: one run under pyinstrument and auto_explain, rolled back")
            with profiling.Profile("reconcile", explain_ms=50) as prof, transaction.atomic():
                reconcile_run(as_of=now)
                transaction.set_rollback(True)
            prof.write()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE custody_movement")
                cursor.execute("VACUUM ANALYZE settlement_leg")

        step("reconcile_run")
        started = time.perf_counter()
        first = reconcile_run(as_of=now)
        reconcile_s = time.perf_counter() - started
        step(f"  {reconcile_s:.3f} s: {len(first.confirmed):,} legs confirmed, {len(first.breaks)} breaks")
        step("  phases: " + ", ".join(f"{k} {v:.3f} s" for k, v in first.timings.items()))
        matching_s = first.timings["one_to_one"] + first.timings["many_to_one"]
        started = time.perf_counter()
        again = reconcile_run(as_of=now)
        again_s = time.perf_counter() - started
        step(f"  again: {again_s:.3f} s, {len(again.confirmed)} confirmed, {len(again.breaks)} breaks")

        found = {
            "confirmed": Leg.objects.filter(status="confirmed", confirmed_by="custody:matcher").count(),
            "short_delivery": Break.objects.filter(kind="short_delivery").count(),
            "unmatched_receipt": Break.objects.filter(kind="unmatched_receipt").count(),
        }
        settled = Batch.objects.filter(status="settled").count() - args.history // len(ASSETS)
        wrong = {k: (found[k], v) for k, v in setup.expected.items() if found[k] != v}
        if wrong or again.confirmed or again.breaks:
            raise BenchError(f"reconciliation found (found, expected) {wrong}; second run {again.as_json()}")

        result = {
            "date": benchkit.now_iso(),
            "machine": benchkit.machine(),
            "postgres": benchkit.server_settings(url),
            "load_average_before": load_before,
            "load_average_after": benchkit.load_average(),
            "params": vars(args),
            **counts,
            **raw,
            "reconcile_s": reconcile_s,
            "reconcile_again_s": again_s,
            "phases_s": first.timings,
            "matching_s": matching_s,
            "legs_confirmed": len(first.confirmed),
            "batches_settled": settled,
            "breaks": len(first.breaks),
        }
        result["summary"] = [
            benchkit.row(
                f"reconcile {counts['movements']:,} movements vs {counts['open_legs']:,} legs: matching (limit: raw join)",
                ours=matching_s,
                limit=raw["raw_join_s"],
                unit="s",
                target="<= 2",
            ),
            benchkit.row(
                "the same matching (limit: raw join + link and leg UPDATEs)",
                ours=matching_s,
                limit=raw["raw_join_writes_s"],
                unit="s",
            ),
            benchkit.row(
                f"the whole reconcile_run, settling {settled:,} batches (limit: raw join)",
                ours=reconcile_s,
                limit=raw["raw_join_s"],
                unit="s",
            ),
            benchkit.row(
                "reconcile again, nothing new (limit: raw join)",
                ours=again_s,
                limit=raw["raw_join_s"],
                unit="s",
            ),
        ]
        print()
        for key in (
            "movements",
            "open_legs",
            "pairs",
            "raw_join_s",
            "raw_join_writes_s",
            "reconcile_s",
            "reconcile_again_s",
        ):
            print(f"{key}={result[key]}")
        print()
        print("\n".join(benchkit.summary_lines(result["summary"])))
        path = benchkit.result_write("reconcile", result)
        print(f"figures written to {path} ({step.elapsed:.0f} s in all)")
        return 0
    finally:
        connection.close()
        if not args.keep_db:
            benchkit.database_drop(url)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
