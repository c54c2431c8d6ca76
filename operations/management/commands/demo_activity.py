from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.exceptions import DomainError
from operations.services.demo import demo_activity


class Command(BaseCommand):
    help = (
        "DEMO ONLY (DEMO=1, set by make run): post a few trades, run an intraday cycle and SIMULATE leg "
        "confirmations, labelled as such in their evidence, so the dashboard shows whole cycles."
    )

    def add_arguments(self, parser):
        parser.add_argument("--trades", type=int, default=12)
        parser.add_argument("--seed", type=int)

    def handle(self, *args, **options):
        if not 1 <= options["trades"] <= 1000:
            raise CommandError("--trades must be between 1 and 1000")
        try:
            result = demo_activity(now=timezone.now(), trades=options["trades"], seed=options["seed"])
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"demo: {result['trades']} trades, cycle {result['cycle']} with {result['batches']} batch(es), "
            f"{result['legs_confirmed_by_demo']} leg(s) confirmed by SIMULATION"
        )
        holds = result["holds"]
        refused = ", ".join(f"{n} {code}" for code, n in sorted(holds["refused"].items())) or "none"
        self.stdout.write(
            f"demo prefunding: {holds['placed']} order(s) funded and held before matching; refused: {refused}; "
            f"{result['bank_reports']} bank balance report(s) attesting designated accounts"
        )
