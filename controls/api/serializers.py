"""Shapes of the approvals API, for the OpenAPI schema."""

from rest_framework import serializers


class ApprovalSerializer(serializers.Serializer):
    approval_id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(["pending", "approved", "rejected"])
    payload = serializers.JSONField()
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    result = serializers.JSONField(allow_null=True)
    changes = serializers.ListField(
        child=serializers.DictField(),
        help_text="record changes asked for: target, natural_key, operation, before, after",
    )
