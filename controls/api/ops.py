"""The operations API base (staff users, "Authorization: Token <token>",
by group) and the four-eyes approvals every layer's requests go through."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import pagination, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controls.exceptions import InvalidInput
from controls.models import ApprovalRequest
from controls.services.approvals import (
    APPROVER_GROUP,
    OPERATOR_GROUPS,
    VIEWER_GROUPS,
    approval_as_json,
    approval_decide,
)

from . import serializers as s
from .auth import StaffTokenAuthentication
from .parsing import json_object
from .schema import cursor_page


class InGroups(permissions.BasePermission):
    message = "an operations user in the right group is needed (create_staff_user)"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_staff", False) or not getattr(user, "is_active", False):
            return False
        groups = view.write_groups if request.method not in permissions.SAFE_METHODS else VIEWER_GROUPS
        return user.groups.filter(name__in=groups).exists()


class OpsView(APIView):
    authentication_classes = [StaffTokenAuthentication]
    permission_classes = [InGroups]
    write_groups: tuple[str, ...] = OPERATOR_GROUPS


class ApprovalPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50


class OpsApprovalsView(OpsView):
    @extend_schema(
        summary="Approval requests (filter by status)",
        operation_id="ops_approvals_list",
        responses={200: cursor_page("ApprovalPage", s.ApprovalSerializer)},
    )
    def get(self, request):
        queryset = ApprovalRequest.objects.select_related("requested_by", "decided_by").prefetch_related("changes")
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
    write_groups = (APPROVER_GROUP,)
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
