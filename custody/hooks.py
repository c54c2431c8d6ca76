"""Custody's hooks for the layers above (see controls.hooks)."""

from controls.hooks import Hook

reconcile_finished = Hook(
    "reconcile_finished",
    "A reconciliation run (after a statement import, a chain poll, or on its schedule) has matched legs and "
    "raised its breaks. Called with as_of, actor and result (a ReconcileResult: receivers add the ids of the "
    "breaks they raise to result.breaks); reserves reconciles the fund's trust account with its statements.",
)
