import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.exceptions import DomainError
from custody.services.statements import statement_import


class Command(BaseCommand):
    help = (
        "Import a bank statement file (ISO 20022 camt.053 or SWIFT MT940) for home's bank accounts. The whole file "
        "is refused, naming the line, if anything in it is wrong; importing the same statement again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the statement file")
        parser.add_argument("--format", choices=["camt053", "mt940"], help="default: detected from the content")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            result = statement_import(
                data=data,
                filename=path.name,
                format=options["format"],
                actor="cli:import_statement",
                now=timezone.now(),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), indent=2))
            return
        for s in result.statements:
            line = (
                f"{s['account']} statement {s['statement_ref']}: {s['result']}, {s['new_entries']} new "
                f"entr{'y' if s['new_entries'] == 1 else 'ies'}, {s['duplicate_entries']} already imported"
            )
            if s.get("balance_problem"):
                line += f"; BALANCE BREAK: {s['balance_problem']}"
            self.stdout.write(line)
