"""Notifications (DESIGN section 10, circular para 15: robust real-time
monitoring): every change that needs a person is pushed once to whoever
subscribed to its kind, as a signed webhook or an e-mail.

Edge-triggered: ``notifications_scan`` observes the watched states (the
exposure state and each counterparty's limit, failed batches, breaks past
their age, leg deadlines coming up, defaults, paid claims) and the alerts
the lower layers raise, compares each with the last state it saw
(``WatchedState``) and makes a notification only for a change, so a state
that persists is told once however often the scan runs. Deliveries go out
through Celery after the commit (``operations.notification_deliver``), with
retries and backoff.
"""

from .delivery import delivery_attempt, signature_header, signature_verify
from .scan import ALERT_KINDS, deliveries_pending, notification_sample, notifications_scan
from .subscriptions import subscription_save

__all__ = [
    "ALERT_KINDS",
    "deliveries_pending",
    "delivery_attempt",
    "notification_sample",
    "notifications_scan",
    "signature_header",
    "signature_verify",
    "subscription_save",
]
