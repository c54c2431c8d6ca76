from django.core.management.base import BaseCommand, CommandError

from controls.exceptions import DomainError
from controls.services.staff import staff_token_issue, staff_user_create


class Command(BaseCommand):
    help = (
        "Create an operations user in one group with an API token for the operations API "
        "('Authorization: Token <token>'), or with --new-token issue a new token for an existing user. "
        "The token is stored hashed, expires after STAFF_TOKEN_TTL_HOURS, and is printed once, alone on the "
        "last line. Set a password with 'manage.py changepassword' for the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--group", choices=["ops_operator", "ops_approver", "ops_viewer"])
        parser.add_argument(
            "--new-token", action="store_true", help="issue a new token for an existing user (tokens expire)"
        )

    def handle(self, *args, **options):
        try:
            if options["new_token"]:
                user, token, expiry = staff_token_issue(username=options["username"], actor="cli:create_staff_user")
                what = f"new API token for {user.username}"
            else:
                if not options["group"]:
                    raise CommandError("--group is required to create a user (or give --new-token)")
                user, token, expiry = staff_user_create(
                    username=options["username"], group=options["group"], actor="cli:create_staff_user"
                )
                what = f"created {options['group']} user {user.username}; their API token"
        except DomainError as error:
            raise CommandError(error.message) from None
        until = f"valid until {expiry:%Y-%m-%d %H:%M %Z}" if expiry else "does not expire"
        self.stdout.write(f"{what} ({until}; shown once):")
        self.stdout.write(token)
