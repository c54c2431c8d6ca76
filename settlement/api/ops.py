"""The operations API: staff users with "Authorization: Token <token>"."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import pagination, permissions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from custody.services import rail_status_set
from settlement.exceptions import InvalidInput
from settlement.models import ApprovalRequest
from settlement.selectors import cycle_as_json
from settlement.services.approvals import (
    OPERATOR_GROUPS,
    VIEWER_GROUPS,
    actor_of,
    approval_as_json,
    approval_decide,
    approval_request,
)
from settlement.services.cycles import cycle_run

from . import serializers as s
from .cycles import parse_as_of
from .views import json_object


class InGroups(permissions.BasePermission):
    message = "an operations user in the right group is needed (create_staff_user)"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_staff", False) or not getattr(user, "is_active", False):
            return False
        groups = view.write_groups if request.method not in permissions.SAFE_METHODS else VIEWER_GROUPS
        return user.groups.filter(name__in=groups).exists()


class OpsView(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [InGroups]
    write_groups: tuple[str, ...] = OPERATOR_GROUPS


class OpsCyclesView(OpsView):
    @extend_schema(
        summary="Run a cycle now (optionally for the time it should have run)",
        responses={200: s.CycleSerializer, 201: s.CycleSerializer},
        request=inline_serializer(
            "OpsCycleRun",
            {"kind": serializers.ChoiceField(["intraday", "eod"]), "as_of": serializers.DateTimeField(required=False)},
        ),
    )
    def post(self, request):
        data = json_object(request, "kind")
        now = timezone.now()
        as_of = parse_as_of(data.get("as_of"), default=now.replace(second=0, microsecond=0))
        cycle = cycle_run(kind=data.get("kind"), as_of=as_of, actor=actor_of(request.user))
        return Response(cycle_as_json(cycle, detail=True), status=201)


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


class OpsLegConfirmView(OpsView):
    @extend_schema(
        summary="Ask for a manual leg confirmation (four eyes)",
        request=inline_serializer("LegConfirm", {"evidence": serializers.CharField()}),
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request, leg_id: int):
        data = json_object(request, "evidence")
        evidence = data.get("evidence")
        if not isinstance(evidence, str) or not evidence.strip():
            raise InvalidInput("invalid_field", "evidence must describe what shows the leg settled", field="evidence")
        approval = approval_request(
            kind=ApprovalRequest.Kind.LEG_CONFIRM,
            payload={"leg_id": leg_id, "evidence": evidence.strip()},
            user=request.user,
            now=timezone.now(),
        )
        return Response(approval_as_json(approval), status=202)


class ApprovalPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50


class OpsApprovalsView(OpsView):
    @extend_schema(summary="Approval requests (filter by status)", responses={200: s.ApprovalSerializer(many=True)})
    def get(self, request):
        queryset = ApprovalRequest.objects.select_related("requested_by", "decided_by")
        status = request.query_params.get("status")
        if status:
            if status not in ApprovalRequest.Status.values:
                raise InvalidInput(
                    "invalid_field", f"status must be one of {', '.join(ApprovalRequest.Status.values)}", field="status"
                )
            queryset = queryset.filter(status=status)
        paginator = ApprovalPage()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([approval_as_json(a) for a in page])


class OpsApprovalDecisionView(OpsView):
    write_groups = ("ops_approver",)
    approve = True

    @extend_schema(
        summary="Approve or reject (a different person from the requester)",
        responses={200: s.ApprovalSerializer, 201: s.ApprovalSerializer},
        request=inline_serializer("Decision", {"reason": serializers.CharField(required=False)}),
    )
    def post(self, request, approval_id: int):
        data = json_object(request, "reason") if request.body else {}
        reason = data.get("reason") or ""
        if not isinstance(reason, str):
            raise InvalidInput("invalid_field", "reason must be a string", field="reason")
        approval = approval_decide(
            approval_id=approval_id, user=request.user, approve=self.approve, reason=reason, now=timezone.now()
        )
        return Response(approval_as_json(approval))
