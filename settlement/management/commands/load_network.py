"""``manage.py load_network FILE.toml``: load the network file (DESIGN section 11)."""

import getpass
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from settlement.exceptions import DomainError
from settlement.services.network import network_load


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


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


def read_text(file: str) -> str:
    """The file's text, or a one-line CommandError saying why it cannot be read."""
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{file}: is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{file}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise CommandError(f"{file}: cannot read: {error.strerror or error}") from None


def dumps(body: dict) -> str:
    return json.dumps(body, indent=2, sort_keys=False)
