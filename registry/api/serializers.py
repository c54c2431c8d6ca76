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
