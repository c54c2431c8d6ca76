from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "custody"
    verbose_name = "Custody: movements, statements, reconciliation"

    def ready(self) -> None:
        # settlement fires this hook when home must send: the outbox writes
        # the custodian's instructions in that same transaction
        from settlement import hooks

        from .services.breaks import batch_dispute_break
        from .services.instructions import (
            escrow_releases_write,
            escrow_returns_write,
            instructions_follow_legs,
            instructions_write,
        )
        from .services.reconcile.deliveries import legs_fail_reasons
        from .tasks import open_orders_queue

        hooks.outbound_legs_instructed.connect(instructions_write)
        # and closes an instruction when its leg ends (confirmed: done; failed
        # or cancelled: cancelled), so the outbox lists only what is due
        hooks.legs_finished.connect(instructions_follow_legs)
        # escrow: the releases (every leg locked) or the returns (the batch
        # failed) go to the escrow custodian in settlement's transaction
        hooks.escrow_released.connect(escrow_releases_write)
        hooks.escrow_returned.connect(escrow_returns_write)
        # a failing leg's reason: custody knows a short or over delivery
        hooks.legs_failing.connect(legs_fail_reasons)
        # a counterparty disputed a batch: a break for operations to own
        hooks.batch_disputed.connect(batch_dispute_break)
        # the engine posted its open orders: reconcile them with the holds
        hooks.open_orders_received.connect(open_orders_queue)
