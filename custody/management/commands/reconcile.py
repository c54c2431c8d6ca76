import json

from django.core.management.base import BaseCommand
from django.db.models import Count

from controls.commands import as_of_argument
from custody.models import Break
from custody.services.reconcile import reconcile_run


class Command(BaseCommand):
    help = (
        "Match observed movements to legs (confirming what is final), raise the breaks (unmatched receipts and "
        "payments, short, over and missing deliveries) and write the outbound instruction outbox. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 with a time zone; default: now")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        as_of = as_of_argument(options["as_of"])
        result = reconcile_run(as_of=as_of, actor="cli:reconcile")
        open_breaks = dict(
            Break.objects.filter(status__in=Break.UNRESOLVED).values_list("kind").annotate(n=Count("id")).order_by()
        )
        if options["json"]:
            self.stdout.write(json.dumps({**result.as_json(), "unresolved_breaks": open_breaks}, indent=2))
            return
        self.stdout.write(
            f"{len(result.confirmed)} leg(s) confirmed, {len(result.confirming)} confirming, "
            f"{len(result.locked)} locked in escrow, "
            f"{len(result.breaks)} break(s) raised or changed, {result.instructions} instruction(s) written"
        )
        self.stdout.write(
            "unresolved breaks: " + (", ".join(f"{k} {n}" for k, n in sorted(open_breaks.items())) or "none")
        )
