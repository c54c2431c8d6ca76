"""Subscriptions: who is told about which kinds of change."""

import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from controls.exceptions import InvalidInput
from controls.services.audit import audit_record

from ...models import EventKind, Subscription

FIELDS = ("name", "channel", "url", "email", "kinds", "active")


def _check(subscription: Subscription) -> None:
    if subscription.channel not in Subscription.Channel.values:
        raise InvalidInput("invalid_field", "channel must be webhook or email", field="channel")
    kinds = subscription.kinds
    if not isinstance(kinds, list) or not kinds:
        raise InvalidInput("invalid_field", "choose at least one event kind", field="kinds")
    unknown = sorted(set(kinds) - set(EventKind.values))
    if unknown:
        raise InvalidInput("invalid_field", f"unknown event kind(s): {', '.join(unknown)}", field="kinds")
    try:
        if subscription.channel == Subscription.Channel.WEBHOOK:
            if not subscription.url:
                raise InvalidInput("missing_field", "a webhook needs a URL", field="url")
            URLValidator(schemes=["http", "https"])(subscription.url)
        else:
            if not subscription.email:
                raise InvalidInput("missing_field", "an e-mail subscription needs an address", field="email")
            EmailValidator()(subscription.email)
    except ValidationError as error:
        field = "url" if subscription.channel == Subscription.Channel.WEBHOOK else "email"
        raise InvalidInput("invalid_field", f"{field}: {error.messages[0]}", field=field) from error


def secret_new() -> str:
    """A webhook secret: 256 random bits, hex."""
    return secrets.token_hex(32)


def subscription_save(*, subscription: Subscription, actor: str, now: datetime) -> Subscription:
    """Create or change a subscription (audited). A webhook without a secret
    gets a new random one; the secret never goes into the audit trail."""
    _check(subscription)
    with transaction.atomic():
        before = None
        if subscription.pk:
            old = Subscription.objects.select_for_update().get(pk=subscription.pk)
            before = {f: getattr(old, f) for f in FIELDS} | {"secret_changed": False}
            secret_changed = old.secret != subscription.secret
        else:
            subscription.created_by = actor
            subscription.created_at = now
            secret_changed = True
        if subscription.channel == Subscription.Channel.WEBHOOK and not subscription.secret:
            subscription.secret = secret_new()
            secret_changed = True
        subscription.kinds = sorted(set(subscription.kinds))
        subscription.updated_at = now
        subscription.save()
        audit_record(
            actor=actor,
            action="subscription.saved",
            object_type="Subscription",
            object_id=subscription.id,
            before=before,
            after={f: getattr(subscription, f) for f in FIELDS} | {"secret_changed": secret_changed},
            at=now,
        )
    return subscription
