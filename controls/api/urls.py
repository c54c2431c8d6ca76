"""This app's endpoints under /api/v1/ (included from config/urls.py)."""

from django.urls import path

from . import ops

urlpatterns = [
    path("ops/approvals", ops.OpsApprovalsView.as_view(), name="ops-approvals"),
    path(
        "ops/approvals/<int:approval_id>/approve", ops.OpsApprovalDecisionView.as_view(approve=True), name="ops-approve"
    ),
    path(
        "ops/approvals/<int:approval_id>/reject", ops.OpsApprovalDecisionView.as_view(approve=False), name="ops-reject"
    ),
]
