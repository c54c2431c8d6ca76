from django.core.management.base import BaseCommand, CommandError

from controls.exceptions import DomainError
from controls.services.staff import staff_user_create


class Command(BaseCommand):
    help = (
        "Create an operations user in one group with an API token for the operations API "
        "('Authorization: Token <token>'). The token is printed once, alone on the last line. "
        "Set a password with 'manage.py changepassword' for the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--group", required=True, choices=["ops_operator", "ops_approver", "ops_viewer"])

    def handle(self, *args, **options):
        try:
            user, token = staff_user_create(
                username=options["username"], group=options["group"], actor="cli:create_staff_user"
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"created {options['group']} user {user.username}; their API token (shown once):")
        self.stdout.write(token)
