"""``manage.py load_jurisdictions [FILE]``: load the FATF list facts per jurisdiction."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controls.commands import default_actor, dumps, read_text
from controls.datafile import LineLocator, toml_parse
from controls.exceptions import DomainError
from registry.services.jurisdictions import DATA_FILE, ERROR_CODE, jurisdictions_sync


class Command(BaseCommand):
    help = (
        "Create or update jurisdictions and their FATF list facts (member, suspended, FSRB bodies, "
        "IOSCO-aligned, call for action, increased monitoring) from a TOML data file. Run it when FATF "
        "changes its lists. Jurisdictions missing from the file are left as they are; any problem in "
        "the file applies nothing. Once operators are registered, the changes are proposed (--user names who "
        "proposes) as one approval request that a different ops_approver must approve."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", nargs="?", metavar="FILE", default=str(DATA_FILE), help=f"the data file (default: {DATA_FILE})"
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print the counts as JSON instead of a summary line"
        )
        parser.add_argument(
            "--actor", default=default_actor(), help="who is loading, for the audit trail (default: cli:<OS user>)"
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="once operators exist: the ops_operator or ops_approver who proposes"
        )

    def handle(self, *args, file: str, as_json: bool, actor: str, user: str | None, **options) -> None:
        text = read_text(file)
        proposer = None
        if user is not None:
            proposer = User.objects.filter(username=user, is_active=True).first()
            if proposer is None:
                raise CommandError(f"--user {user!r}: no active user of that name")
        try:
            data = toml_parse(text, code=ERROR_CODE)
            result = jurisdictions_sync(data=data, actor=actor, locator=LineLocator(text), user=proposer)
        except DomainError as error:
            raise CommandError(f"{file}: {error.message}") from None
        if as_json:
            self.stdout.write(dumps(result))
            return
        proposed = result.get("approval_id")
        verb = f"proposed as approval {proposed} (a different ops_approver must approve it): " if proposed else ""
        self.stdout.write(
            f"jurisdictions as of {result['as_of']}: {result['jurisdictions']} in the file; {verb}"
            f"{result['created']} created, {result['updated']} updated, {result['unchanged']} unchanged"
        )
