import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.commands import date_argument
from controls.exceptions import DomainError
from settlement.services.statements import statements_generate


class Command(BaseCommand):
    help = (
        "Make each counterparty's daily settlement statement for --date (after that day's end-of-day cut-off), as "
        "the end-of-day task does. A statement whose facts did not change is left as it is; one whose facts "
        "changed gets a new version."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="YYYY-MM-DD (Hong Kong date of the cut-off)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            made = statements_generate(
                day=date_argument(options["date"]), actor="cli:settlement_statements", now=timezone.now()
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        body = [{"counterparty": s.counterparty.code, "date": s.day.isoformat(), "version": s.version} for s in made]
        if options["json"]:
            self.stdout.write(json.dumps(body))
            return
        for line in body:
            self.stdout.write(f"{line['counterparty']} {line['date']} version {line['version']}")
        if not body:
            self.stdout.write("no statement changed")
