import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from reserves.reports import jsonable, reserve_report


class Command(BaseCommand):
    help = "The reserve fund against the cap, exposure history, bank-rail closures and the recommended fund size, with the method."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        report = jsonable(reserve_report(as_of=timezone.now()))
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(
            f"fund {report['balance_hkd']} HKD (available {report['available_hkd']}), cap {report['cap_hkd']}, "
            f"effective cap {report['effective_cap_hkd']}, coverage {report['coverage_ratio']}"
        )
        self.stdout.write(
            f"recommended fund {report['recommended_hkd']} HKD, recommended cap {report['recommended_cap_hkd']} HKD"
        )
        for window in ("last_30_days", "last_90_days"):
            w = report[window]
            self.stdout.write(
                f"  {window}: peak {w['peak_hkd']}, p99 daily peak {w['p99_daily_peak_hkd']}, mean utilisation {w['mean_utilisation']}, days {w['days_with_data']}"
            )
        for c in report["closures"]:
            self.stdout.write(
                f"  {c['rail']}: longest closure {c['longest_from']}..{c['longest_to']} ({c['days']} days), build-up {c['build_up_hkd']} HKD"
            )
        self.stdout.write("method:")
        for line in report["method"]:
            self.stdout.write(f"  - {line}")
        if report["claims_shortfall_hkd"] != "0.00":
            self.stdout.write(f"UNPAID CLAIMS SHORTFALL {report['claims_shortfall_hkd']} HKD")
