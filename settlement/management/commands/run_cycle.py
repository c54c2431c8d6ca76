import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.commands import as_of_argument
from controls.exceptions import DomainError
from settlement.selectors.cycles import cycle_as_json
from settlement.services.cycles import cycle_start


class Command(BaseCommand):
    help = (
        "Run a netting cycle: take every open obligation executed by --as-of whose rails are open, one batch "
        "per counterparty, netted per asset. Running the same kind and --as-of again returns the same cycle, "
        "so a missed cycle can be run later for the time it should have run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=["intraday", "eod"])
        parser.add_argument(
            "--as-of", help="ISO 8601 with a time zone; default: now (everything executed up to this moment)"
        )
        parser.add_argument("--json", action="store_true", help="print the cycle with its batches and legs as JSON")

    def handle(self, *args, **options):
        as_of = as_of_argument(options["as_of"]) if options["as_of"] else timezone.now()
        try:
            run = cycle_start(kind=options["kind"], as_of=as_of, actor="cli:run_cycle")
        except DomainError as error:
            raise CommandError(error.message) from None
        cycle = run.cycle
        body = {**cycle_as_json(cycle, detail=True), "replayed": run.replayed}
        if options["json"]:
            self.stdout.write(json.dumps(body, indent=2, default=str))
            return
        self.stdout.write(
            f"{cycle.kind} cycle {cycle.id} at {body['as_of']}{' (replayed: it had run already)' if run.replayed else ''}: "
            f"{cycle.obligations_taken} obligation(s) taken, "
            f"{cycle.obligations_deferred} deferred, {len(body['batches'])} batch(es)"
        )
        for batch in body["batches"]:
            legs = (
                ", ".join(
                    f"{leg['direction']} {leg['amount']} {leg['asset']} ({leg['status']})" for leg in batch["legs"]
                )
                or "no legs"
            )
            netting = " by netting" if batch["settled_by_netting"] else ""
            self.stdout.write(f"  {batch['counterparty']}: batch {batch['id']} {batch['status']}{netting}: {legs}")
