import json

from django.core.management.base import BaseCommand

from controls.commands import as_of_argument
from settlement.services.deadlines import deadlines_check


class Command(BaseCommand):
    help = (
        "Fail every open batch with a leg past its deadline (unless the leg's rail is degraded or halted: then "
        "the batch waits and says why). Failed obligations return to open for the next cycle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 with a time zone; default: now")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        result = deadlines_check(as_of=as_of_argument(options["as_of"]), actor="cli:check_deadlines")
        body = {"failed": result.failed, "waiting": result.waiting, "flagged_for_default_review": result.flagged}
        if options["json"]:
            self.stdout.write(json.dumps(body))
            return
        self.stdout.write(f"failed batches: {result.failed or 'none'}; waiting on a rail: {result.waiting or 'none'}")
        if result.flagged:
            self.stdout.write(f"flagged for default review: {', '.join(result.flagged)}")
