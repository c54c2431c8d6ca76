"""Delivering one notification to one subscriber: a webhook POST signed with
the subscription's secret, or an e-mail through Django's mail."""

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from controls.services.audit import audit_record

from ...models import NotificationDelivery, Subscription

SIGNATURE_HEADER = "X-Settlement-Signature"


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``: the
    timestamp is signed with the body, so a captured request cannot be
    replayed later with a fresh time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_verify(*, secret: str, header: str, body: bytes, now: datetime, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: recompute the signature and refuse an old one."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > tolerance_seconds:
        return False
    expected = signature_header(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, header)


def payload(delivery: NotificationDelivery) -> dict:
    n = delivery.notification
    return {
        "delivery_id": delivery.id,
        "notification_id": n.id,
        "kind": n.kind,
        "key": n.key,
        "state": n.state,
        "previous": n.previous or None,
        "title": n.title,
        "operator": n.operator_code or None,
        "at": n.at.isoformat(),
        "details": n.details,
    }


class DeliveryError(Exception):
    pass


def _webhook(subscription: Subscription, body: bytes, now: datetime) -> int:
    if not subscription.url.startswith(("http://", "https://")):
        raise DeliveryError(f"not an http(s) URL: {subscription.url}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        subscription.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "settlement-notifications/1",
            SIGNATURE_HEADER: signature_header(secret=subscription.secret, timestamp=int(now.timestamp()), body=body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.NOTIFY_WEBHOOK_TIMEOUT_SECONDS) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} from the receiver") from error
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryError(f"receiver unreachable: {getattr(error, 'reason', error)}") from error


def _email(subscription: Subscription, message: dict) -> None:
    lines = [
        message["title"],
        "",
        f"kind: {message['kind']}",
        f"state: {message['previous'] or '-'} -> {message['state']}",
    ]
    lines += [f"at (UTC): {message['at']}", "", json.dumps(message["details"], indent=2, sort_keys=True)]
    try:
        send_mail(
            subject=f"[settlement] {message['title'][:150]}",
            message="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[subscription.email],
        )
    except Exception as error:
        raise DeliveryError(f"mail not sent: {error}") from error


def delivery_attempt(*, delivery_id: int, now: datetime, last: bool, actor: str = "celery") -> str:
    """One attempt; returns the delivery's status afterwards (``pending``
    means: try again later). A delivery already sent or given up on is left
    as it is, so a task run twice sends once."""
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update()
            .select_related("notification", "subscription")
            .get(pk=delivery_id)
        )
        if delivery.status != NotificationDelivery.Status.PENDING:
            return delivery.status
        subscription = delivery.subscription
        message = payload(delivery)
        delivery.attempts += 1
        try:
            if subscription.channel == Subscription.Channel.WEBHOOK:
                delivery.response_status = _webhook(subscription, json.dumps(message, sort_keys=True).encode(), now)
            else:
                _email(subscription, message)
        except DeliveryError as error:
            delivery.last_error = str(error)[:300]
            if last:
                delivery.status = NotificationDelivery.Status.FAILED
        else:
            delivery.status = NotificationDelivery.Status.SENT
            delivery.sent_at = now
            delivery.last_error = ""
        delivery.save(update_fields=["attempts", "last_error", "response_status", "status", "sent_at"])
        audit_record(
            actor=actor,
            action=f"notification.delivery_{'sent' if delivery.status == 'sent' else 'attempt_failed'}",
            object_type="NotificationDelivery",
            object_id=delivery.id,
            after={
                "status": delivery.status,
                "attempts": delivery.attempts,
                "error": delivery.last_error,
                "to": subscription.destination,
            },
            at=now,
        )
        return delivery.status
