import json

from django.core.management.base import BaseCommand

from controls.commands import date_argument
from operations.services.reports import settlement_report


class Command(BaseCommand):
    help = (
        "The daily settlement report (circular para 14): every obligation older than 24 h at the day's end-of-day "
        "cut-off that is unsettled, as a breach, or as deferred when a closed or degraded rail explains it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="YYYY-MM-DD (Hong Kong date of the cut-off)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        report = settlement_report(day=date_argument(options["date"]))
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(
            f"settlement report {report['date']} (cut-off {report['cutoff']}): "
            f"{report['counts']['breaches']} breach(es), {report['counts']['deferred']} deferred"
        )
        for held in report["held_batches"]:
            self.stdout.write(f"  held     batch {held['batch']} {held['counterparty']}: {held['reason']}")
        for excluded in report["excluded_counterparties"]:
            self.stdout.write(f"  excluded {excluded['counterparty']} since {excluded['since']}: {excluded['reason']}")
        for title, lines in (("BREACH", report["breaches"]), ("deferred", report["deferred"])):
            for line in lines:
                reason = f"  ({line['reason']})" if "reason" in line else ""
                if "held_or_excluded" in line:
                    reason += f"  [{line['held_or_excluded']}]"
                self.stdout.write(
                    f"  {title:<8} {line['trade_id']:<20} {line['counterparty']:<6} {line['direction']:<8} "
                    f"{line['amount']:>24} {line['asset']:<6} {line['age_hours']:>6} h  fails {line['fail_count']}{reason}"
                )
