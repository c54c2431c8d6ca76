"""The audit trail is append-only: in code everywhere, and in PostgreSQL itself."""

import pytest
from django.db import DatabaseError, transaction

from controls.models import AuditEvent
from controls.services.audit import audit_record

pytestmark = [pytest.mark.django_db, pytest.mark.para(23)]


def test_audit_events_refuse_update_and_delete_in_code():
    event = audit_record(actor="test", action="thing.done", object_type="Thing", object_id=1, after={"x": 1})

    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()


def test_postgres_refuses_update_and_delete_of_audit_rows():
    audit_record(actor="test", action="thing.done", object_type="Thing", object_id=1)

    for statement in (
        lambda: AuditEvent.objects.update(actor="someone else"),
        lambda: AuditEvent.objects.all().delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    assert AuditEvent.objects.get().actor == "test"


def test_postgres_refuses_to_delete_registry_rows_that_trades_refer_to(network):
    from registry.models import Asset, Operator

    for model in (Operator, Asset):
        with pytest.raises(DatabaseError, match="never deleted"), transaction.atomic():
            model.objects.filter(pk=model.objects.order_by("pk").first().pk)._raw_delete(model.objects.db)
