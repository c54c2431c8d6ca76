"""``manage.py load_network FILE.toml``: load the network file (docs/network-file.md)."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controls.commands import default_actor, dumps, read_text
from controls.exceptions import DomainError
from controls.models import ChangeProposal
from controls.services.changes import change_summary
from operations.services.network import network_load


class Command(BaseCommand):
    help = (
        "Create or update the network from a TOML file: home and overseas operators, jurisdiction overrides, "
        "rails, assets, wallets, bank accounts, client accounts, the cap and its thresholds, the reserve fund's "
        "opening contribution and marks (DESIGN section 11). Loading the same file again changes nothing. "
        "The whole file is checked first: any unknown key or bad value is reported with its line and nothing "
        "is applied. On an empty database the file is applied at once; on a database that already holds a "
        "network its changes are proposed as one approval request (--user names who proposes) that a different "
        "ops_approver must approve."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE.toml", help="the network file")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the file and show what would change (each change, before and after), then roll back",
        )
        parser.add_argument(
            "--json",
            dest="as_json",
            action="store_true",
            help="print the counts, the changes and the approval id as JSON instead of a summary",
        )
        parser.add_argument(
            "--actor", default=default_actor(), help="who is loading, for the audit trail (default: cli:<OS user>)"
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="on a running network: the ops_operator or ops_approver who proposes the changes",
        )

    def handle(self, *args, file: str, dry_run: bool, as_json: bool, actor: str, user: str | None, **options):
        text = read_text(file)
        proposer = None
        if user is not None:
            proposer = User.objects.filter(username=user, is_active=True).first()
            if proposer is None:
                raise CommandError(f"--user {user!r}: no active user of that name")
        try:
            result = network_load(text=text, actor=actor, dry_run=dry_run, user=proposer)
        except DomainError as error:
            raise CommandError(f"{file}: {error.message}") from None
        if as_json:
            self.stdout.write(dumps(result.as_json()))
            return
        self.stdout.write(result.summary())
        if result.changes and (result.dry_run or result.proposed):
            for change in result.changes:
                shown = ChangeProposal(
                    target=change["target"],
                    natural_key=change["natural_key"],
                    operation=change["operation"],
                    before=change["before"],
                    after=change["after"],
                )
                self.stdout.write(f"  {change_summary(shown)}")
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
