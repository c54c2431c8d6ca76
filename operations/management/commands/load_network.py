"""``manage.py load_network FILE.toml``: load the network file (docs/network-file.md)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controls.commands import default_actor, dumps, read_text
from controls.exceptions import DomainError
from operations.services.network import network_load


class Command(BaseCommand):
    help = (
        "Create or update the network from a TOML file: home and overseas operators, jurisdiction overrides, "
        "rails, assets, wallets, bank accounts, client accounts, the cap and its thresholds, the reserve fund's "
        "opening contribution and marks (DESIGN section 11). Loading the same file again changes nothing. "
        "The whole file is checked first: any unknown key or bad value is reported with its line and nothing "
        "is applied."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE.toml", help="the network file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check the file and report what would change, then roll back"
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print the counts as JSON instead of a summary line"
        )
        parser.add_argument(
            "--actor", default=default_actor(), help="who is loading, for the audit trail (default: cli:<OS user>)"
        )

    def handle(self, *args, file: str, dry_run: bool, as_json: bool, actor: str, **options) -> None:
        text = read_text(file)
        try:
            result = network_load(text=text, actor=actor, dry_run=dry_run)
        except DomainError as error:
            raise CommandError(f"{file}: {error.message}") from None
        if as_json:
            self.stdout.write(dumps(result.as_json()))
            return
        self.stdout.write(result.summary())
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
