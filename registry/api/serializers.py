"""Shapes of the registry endpoints, for the OpenAPI schema."""

from rest_framework import serializers


class RailStatusOutSerializer(serializers.Serializer):
    rail = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()


class WhoAmISerializer(serializers.Serializer):
    operator = serializers.CharField()
    scope = serializers.CharField()
    key = serializers.CharField()


class HaircutSerializer(serializers.Serializer):
    asset = serializers.CharField()
    haircut = serializers.CharField(help_text="the setting: exposure is receivable x mark x (1 + haircut)")
    suggested = serializers.CharField(allow_null=True, help_text="from the marks history; null: too little history")
    horizon_hours = serializers.CharField(help_text="the longest coming settlement horizon of the asset's rails")
    samples = serializers.IntegerField()
    note = serializers.CharField()
