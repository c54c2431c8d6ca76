from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "custody"
    verbose_name = "Custody: movements, statements, reconciliation"

    def ready(self) -> None:
        # settlement fires this hook when home must send: the outbox writes
        # the custodian's instructions in that same transaction
        from settlement import hooks

        from .services.instructions import instructions_follow_legs, instructions_write

        hooks.outbound_legs_instructed.connect(instructions_write)
        # and closes an instruction when its leg ends (confirmed: done; failed
        # or cancelled: cancelled), so the outbox lists only what is due
        hooks.legs_finished.connect(instructions_follow_legs)
