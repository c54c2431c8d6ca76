from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "custody"
    verbose_name = "Custody: movements, statements, reconciliation"

    def ready(self) -> None:
        # settlement fires this hook when home must send: the outbox writes
        # the custodian's instructions in that same transaction
        from settlement import hooks

        from .services.instructions import instructions_write
        from .tasks import open_orders_queue

        hooks.outbound_legs_instructed.connect(instructions_write)
        # the engine posted its open orders: reconcile them with the holds
        hooks.open_orders_received.connect(open_orders_queue)
