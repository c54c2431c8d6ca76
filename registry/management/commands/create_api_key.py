from django.core.management.base import BaseCommand, CommandError

from controls.exceptions import DomainError
from registry.services.keys import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key that acts for one operator. The key is printed once, alone on the last "
        "line; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operator", required=True, help="operator code, e.g. HK1")
        parser.add_argument("--name", required=True, help="a name to recognise the key by, e.g. matching-engine-prod")
        parser.add_argument(
            "--scope",
            choices=["engine", "operator", "operations"],
            help="engine (matching engine, home operator only), operator (an overseas operator: its own "
            "obligations), operations. Default: engine for the home operator, operator otherwise.",
        )

    def handle(self, *args, **options):
        try:
            key, secret = api_key_create(
                operator_code=options["operator"],
                name=options["name"],
                scope=options["scope"],
                actor="cli:create_api_key",
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"created {key.scope} key {key.name!r} for {key.operator.code} (prefix {key.prefix}); store it now, it is not shown again:"
        )
        self.stdout.write(secret)
