from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "custody"
    verbose_name = "Custody: movements, statements, reconciliation"

    def ready(self) -> None:
        # settlement fires this hook when home must send: the outbox writes
        # the custodian's instructions in that same transaction
        from settlement import hooks

        from .services.instructions import instructions_follow_legs, instructions_write
        from .tasks import open_orders_queue

        hooks.outbound_legs_instructed.connect(instructions_write)
        # and closes an instruction when its leg ends (confirmed: done; failed
        # or cancelled: cancelled), so the outbox lists only what is due
        hooks.legs_finished.connect(instructions_follow_legs)
        # the engine posted its open orders: reconcile them with the holds
        hooks.open_orders_received.connect(open_orders_queue)
