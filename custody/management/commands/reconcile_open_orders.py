import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.commands import default_actor, read_text
from controls.exceptions import DomainError
from custody.services.prefunding import open_orders_reconcile, open_orders_reconcile_pending
from settlement.services.prefunding import open_orders_receive


class Command(BaseCommand):
    help = (
        "Reconcile the matching engine's open orders with the open prefunding holds (circular para 10): a hold "
        "without an order and an order without a hold each become a break. Without options: every list the engine "
        "posted (POST /api/v1/prefunding/open-orders) that is not reconciled yet. --snapshot ID: that list. "
        '--file FILE: a list from a JSON file {"as_of": "2026-11-23T10:00:00+08:00", "order_ids": ["O1", '
        '{"operator": "SG1", "order_id": "O2"}]}, recorded and reconciled. Idempotent.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", type=int, help="the id of a posted open-orders list")
        parser.add_argument("--file", help="a JSON file with as_of and order_ids")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        if options["snapshot"] is not None and options["file"]:
            raise CommandError("give --snapshot or --file, not both")
        now = timezone.now()
        try:
            if options["file"]:
                try:
                    data = json.loads(read_text(options["file"]))
                except ValueError as error:
                    raise CommandError(f"{options['file']} is not JSON: {error}") from None
                if not isinstance(data, dict):
                    raise CommandError(f"{options['file']} must hold a JSON object with as_of and order_ids")
                snapshot = open_orders_receive(
                    as_of=data.get("as_of"), order_ids=data.get("order_ids"), actor=default_actor(), now=now
                )
                results = [open_orders_reconcile(snapshot_id=snapshot.id, now=now)]
            elif options["snapshot"] is not None:
                results = [open_orders_reconcile(snapshot_id=options["snapshot"], now=now)]
            else:
                results = open_orders_reconcile_pending(now=now)
        except DomainError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(json.dumps([r.as_json() for r in results], indent=2))
            return
        if not results:
            self.stdout.write("no open-orders list waiting")
        for r in results:
            self.stdout.write(
                f"list {r.snapshot_id}: {r.holds_without_order} hold(s) without an order, "
                f"{r.orders_without_hold} order(s) without a hold; {len(r.breaks)} break(s) raised, "
                f"{len(r.closed)} closed" + (" (reconciled before)" if r.already else "")
            )
