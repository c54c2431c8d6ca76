"""Registry endpoints: who a key acts for, and a rail's status (operations)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.api.parsing import json_object
from controls.api.serializers import ApprovalSerializer
from controls.services.approvals import actor_of, approval_as_json
from registry.selectors import haircut_suggest
from registry.services.haircuts import asset_get, haircut_propose
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


class OpsAssetHaircutView(OpsView):
    @extend_schema(
        summary="An asset's haircut and the haircut its marks history suggests", responses={200: s.HaircutSerializer}
    )
    def get(self, request, code: str):
        return Response(haircut_suggest(asset_get(code), as_of=timezone.now()).as_json())

    @extend_schema(
        summary="Propose a haircut (four eyes: a different ops_approver applies it)",
        request=inline_serializer("HaircutIn", {"haircut": serializers.CharField(help_text="0 to 1, e.g. 0.10")}),
        responses={202: ApprovalSerializer},
    )
    def post(self, request, code: str):
        data = json_object(request, "haircut")
        approval = haircut_propose(code=code, haircut=data.get("haircut"), user=request.user, now=timezone.now())
        return Response(approval_as_json(approval), status=202)
