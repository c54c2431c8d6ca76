from django.apps import AppConfig


class ReservesConfig(AppConfig):
    name = "reserves"
    verbose_name = "Reserve fund"

    def ready(self) -> None:
        # registers the four-eyes handlers (withdrawal, reversal, cap, default, claim payout)
        from custody import hooks
        from custody.services.reconcile.scope import accounts_reconciled_elsewhere_register

        from . import services  # noqa: F401
        from .services.trust import trust_accounts, trust_reconcile_after

        # the fund's trust account is reconciled against its ledger, not matched to legs
        accounts_reconciled_elsewhere_register(trust_accounts)
        hooks.reconcile_finished.connect(trust_reconcile_after)
