import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from controls.commands import as_of_argument
from custody.services.prefunding import cover_check


class Command(BaseCommand):
    help = (
        "Check every operator's prefunding cover against its designated custodians' latest attestations "
        "(circular para 10): stale or breached cover refuses new holds and becomes a break. Prints the cover."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 with a time zone; default: now")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        as_of = as_of_argument(options["as_of"]) if options["as_of"] else timezone.now()
        result = cover_check(as_of=as_of, actor="cli:prefunding_cover")
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        if not result["cover"]:
            self.stdout.write("no operator has a designated custodian account or a prefunded balance")
            return
        self.stdout.write(
            f"{'operator':<9}{'asset':<7}{'state':<11}{'attested':>24}{'funded':>24}{'headroom':>24}  attested at"
        )
        for c in result["cover"]:
            self.stdout.write(
                f"{c['operator']:<9}{c['asset']:<7}{c['state']:<11}{c['attested'] or '-':>24}"
                f"{c['funded']:>24}{c['headroom'] or '-':>24}  {c['attested_at'] or '-'}"
            )
            if c["reason"]:
                self.stdout.write(f"    {c['reason']}")
        self.stdout.write(f"{len(result['breaks'])} break(s) raised or changed")
