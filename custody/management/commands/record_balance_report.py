import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.api.parsing import load_json
from controls.commands import instant_argument
from controls.exceptions import DomainError, InvalidInput
from custody.services.balances import balance_report_as_json, balance_report_record


class Command(BaseCommand):
    help = (
        "Record a custodian's (or bank's) statement of balances from a JSON file: "
        '{"source": "Harbour Custody Ltd", "reference": "R-2026-11-23", "as_of": "2026-11-23T18:00:00+08:00", '
        '"lines": [{"rail": "eth", "wallet": "0x...", "asset": "USDC", "amount": "1000.00"}, '
        '{"rail": "hkd-chats", "account": "012-345678-001", "asset": "HKD", "amount": "5000.00"}]}. '
        "Each line is compared with the books (opening + final movements); a difference is a break. "
        "The first report of a wallet or account is its opening (baseline)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the report as JSON")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = load_json(path.read_bytes(), what=str(path))
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        except InvalidInput as error:  # not JSON, or nested deeper than any report (the API's own parser)
            raise CommandError(error.message) from None
        if not isinstance(data, dict):
            raise CommandError(f"{path} must hold a JSON object with source, reference, as_of and lines")
        as_of = instant_argument(data.get("as_of"), name="as_of", not_after=timezone.now())
        try:
            report, created = balance_report_record(
                source=data.get("source"),
                reference=data.get("reference"),
                as_of=as_of,
                lines=data.get("lines"),
                actor="cli:record_balance_report",
                now=timezone.now(),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        body = balance_report_as_json(report, result="created" if created else "duplicate")
        if options["json"]:
            self.stdout.write(json.dumps(body, indent=2))
            return
        self.stdout.write(f"report {body['reference']} from {body['source']}: {body['result']}")
        for line in body["lines"]:
            holder = line["wallet"] or line["account"]
            extra = (
                f", books {line['expected']}, difference {line['difference']}" if line["expected"] is not None else ""
            )
            brk = f" -> break {line['break']}" if line["break"] else ""
            self.stdout.write(
                f"  {line['rail']} {holder} {line['asset']}: {line['reported']} {line['outcome']}{extra}{brk}"
            )
