import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from settlement.selectors.exposure import exposure_get
from settlement.services.exposure import exposure_verify


class Command(BaseCommand):
    help = (
        "Show unsettled exposure against the effective cap. --verify recomputes it from the obligations "
        "and exits non-zero (raising an alert) if the running figures differ."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--method", choices=["gross", "net"], default="gross")
        parser.add_argument("--verify", action="store_true", help="compare with a full recompute from the obligations")

    def handle(self, *args, **options):
        now = timezone.now()
        exposure = exposure_get(as_of=now, method=options["method"])
        verify = exposure_verify(as_of=now, actor="cli:exposure") if options["verify"] else None
        if options["json"]:
            body = exposure.as_json()
            if verify is not None:
                body["verify"] = {"ok": verify.ok, "differences": verify.differences, "alert_id": verify.alert_id}
            self.stdout.write(json.dumps(body, indent=2))
        else:
            data = exposure.as_json()
            self.stdout.write(
                f"state {data['state']}  exposure {data['total_hkd']} HKD  effective cap {data['effective_cap_hkd']} HKD  "
                f"utilisation {data['utilisation']}"
            )
            for reason in data["reasons"]:
                self.stdout.write(f"  reason: {reason}")
            for row in data["by_counterparty"]:
                limit = f" limit {row['limit_hkd']}" if row["limit_hkd"] else ""
                self.stdout.write(
                    f"  {row['operator']:<8} {row['exposure_hkd']:>20} HKD{limit}  open obligations {row['open_obligations']}"
                    + ("" if row["eligible"] else "  (not eligible)")
                )
            if verify is not None:
                self.stdout.write(
                    "verify: running figures agree with the recompute"
                    if verify.ok
                    else f"verify: MISMATCH, alert {verify.alert_id}"
                )
        if verify is not None and not verify.ok:
            raise CommandError(
                f"exposure differs from the recompute in {len(verify.differences)} position(s); alert {verify.alert_id} raised"
            )
