import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from controls.commands import date_argument
from controls.exceptions import DomainError
from operations.services.records import records_export


class Command(BaseCommand):
    help = (
        "Export the records the SFC may ask for (circular paras 22, 23) for Hong Kong dates --from..--to inclusive: "
        "trades, trade and compliance exceptions, obligations, cycles, batches, legs, deliveries, instructions, marks, "
        "observed movements, bank statements, balance reports, breaks, approvals and proposals, alerts, defaults, "
        "claims, the reserve ledger (CSV) and the audit trail (JSON Lines), with manifest.json (row counts, SHA-256). "
        "Exits non-zero, naming it, if any family cannot be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
        parser.add_argument("--out", required=True, help="a new or empty directory")
        parser.add_argument("--json", action="store_true", help="print the manifest as JSON")

    def handle(self, *args, **options):
        try:
            manifest = records_export(
                start=date_argument(options["start"]),
                end=date_argument(options["end"]),
                out=Path(options["out"]),
                progress=lambda line: self.stderr.write(line),
                now=timezone.now(),
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        except OSError as error:
            raise CommandError(f"cannot write to {options['out']}: {error.strerror}") from None
        if options["json"]:
            self.stdout.write(json.dumps(manifest, indent=2))
        else:
            files = ", ".join(f"{name} {info['rows']}" for name, info in manifest["files"].items())
            self.stdout.write(f"exported {manifest['from']}..{manifest['to']} to {options['out']}: {files}")
