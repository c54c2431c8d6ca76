import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.exceptions import DomainError
from custody.services.chain import chain_watch_all


class Command(BaseCommand):
    help = (
        "Watch the evm rails: scan new blocks for ERC-20 Transfer events and native transfers to or from the "
        "registered wallets, follow reorgs, mark transfers final at the rail's confirmation depth, then match "
        "them to legs. Resumes from its cursor after a restart. Without --once it polls until interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rail", help="only this evm rail (code); default: every evm rail")
        parser.add_argument("--once", action="store_true", help="one poll, then exit")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls (default 5)")
        parser.add_argument("--json", action="store_true", help="print each poll's result as JSON")

    def handle(self, *args, **options):
        if options["interval"] <= 0:
            raise CommandError("--interval must be more than 0 seconds")
        try:
            while True:
                try:
                    results = chain_watch_all(now=timezone.now(), rail_code=options["rail"])
                except DomainError as error:
                    raise CommandError(error.message) from None
                for result in results:
                    self._report(result, options["json"])
                if options["once"]:
                    failed = [r for r in results if r.error]
                    if failed and len(failed) == len(results):
                        raise CommandError(f"rail {failed[0].rail}: {failed[0].error}")
                    return
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            self.stdout.write("stopped")

    def _report(self, result, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result.as_json()))
            return
        if result.error:
            self.stdout.write(f"{result.rail}: poll failed: {result.error} (rail {result.status})")
            return
        scanned = (
            f"blocks {result.scanned_from}-{result.scanned_to}" if result.scanned_from is not None else "no new block"
        )
        self.stdout.write(
            f"{result.rail}: head {result.head}, {scanned}, {result.new} new transfer(s), {result.final} final, "
            f"{result.reorged} reorged out; rail {result.status}"
        )
        for note in result.notes:
            self.stdout.write(f"  {note}")
