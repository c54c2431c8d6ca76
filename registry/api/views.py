"""Registry endpoints: who a key acts for, and a rail's status (operations)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.api.parsing import json_object
from controls.services.approvals import actor_of
from registry.services.rails import rail_status_set

from . import serializers as s
from .auth import Scope
from .scoped import ScopedView


class WhoAmIView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)

    @extend_schema(summary="The operator and scope of this API key", responses={200: s.WhoAmISerializer})
    def get(self, request):
        return Response(
            {"operator": request.user.operator.code, "scope": request.user.scope, "key": request.user.key.name}
        )


class OpsRailStatusView(OpsView):
    @extend_schema(
        summary="Set a rail up, degraded or halted",
        responses={200: s.RailStatusOutSerializer, 201: s.RailStatusOutSerializer},
        request=inline_serializer(
            "RailStatus",
            {"status": serializers.ChoiceField(["up", "degraded", "halted"]), "reason": serializers.CharField()},
        ),
    )
    def post(self, request, code: str):
        data = json_object(request, "status")
        rail = rail_status_set(
            code=code,
            status=data.get("status") or "",
            reason=data.get("reason") or "",
            actor=actor_of(request.user),
            now=timezone.now(),
        )
        return Response({"rail": rail.code, "status": rail.status, "reason": rail.status_reason})
