from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.exceptions import DomainError
from operations.services.demo import demo_chain_reset


class Command(BaseCommand):
    help = (
        "DEMO ONLY (DEMO=1, set by make run): the local demo chain started afresh, so forget the chain "
        "watcher's cursor and block trail for its rail; the watcher starts again at the new chain's head."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rail", required=True, help="code of the demo chain's rail, e.g. eth")

    def handle(self, *args, **options):
        try:
            reset = demo_chain_reset(rail_code=options["rail"], now=timezone.now())
        except DomainError as error:
            raise CommandError(error.message) from None
        if reset:
            self.stdout.write(f"demo chain restarted: the watcher of rail {options['rail']} starts at its new head")
