from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.exceptions import DomainError
from operations.services.demo import demo_chain_tokens


class Command(BaseCommand):
    help = (
        "DEMO ONLY (DEMO=1, set by make run): deploy the demo chain's tokens at the addresses the network "
        "file names and mint the demo custodians' holdings into every designated wallet of the rail, so the "
        "chain watcher attests the operators' prefunding cover (circular para 10). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rail", required=True, help="code of the demo chain's rail, e.g. eth")

    def handle(self, *args, **options):
        try:
            result = demo_chain_tokens(rail_code=options["rail"], now=timezone.now())
        except DomainError as error:
            raise CommandError(error.message) from None
        except Exception as error:  # the node: connection refused, a failed transaction
            raise CommandError(f"the demo chain of rail {options['rail']} failed: {error}") from None
        deployed = ", ".join(result["deployed"]) or "none (already there)"
        minted = "; ".join(result["minted"]) or "none (already held)"
        self.stdout.write(
            f"demo chain: tokens deployed: {deployed}; custodian holdings minted (tokens) or sent (the native coin): {minted}"
        )
