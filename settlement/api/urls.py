from django.urls import path

from . import cycles, ops, views

urlpatterns = [
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("trades", views.TradesView.as_view(), name="trades"),
    path("exposure", views.ExposureView.as_view(), name="exposure"),
    path("exposure/check", views.ExposureCheckView.as_view(), name="exposure-check"),
    path("marks", views.MarksView.as_view(), name="marks"),
    path("obligations", views.ObligationListView.as_view(), name="obligations"),
    path("cycles", cycles.CyclesView.as_view(), name="cycles"),
    path("cycles/<int:cycle_id>", cycles.CycleDetailView.as_view(), name="cycle"),
    path("legs/<int:leg_id>/deliveries", cycles.DeliveriesView.as_view(), name="leg-deliveries"),
    path("ops/cycles", ops.OpsCyclesView.as_view(), name="ops-cycles"),
    path("ops/rails/<str:code>/status", ops.OpsRailStatusView.as_view(), name="ops-rail-status"),
    path("ops/legs/<int:leg_id>/confirm", ops.OpsLegConfirmView.as_view(), name="ops-leg-confirm"),
    path("ops/approvals", ops.OpsApprovalsView.as_view(), name="ops-approvals"),
    path(
        "ops/approvals/<int:approval_id>/approve", ops.OpsApprovalDecisionView.as_view(approve=True), name="ops-approve"
    ),
    path(
        "ops/approvals/<int:approval_id>/reject", ops.OpsApprovalDecisionView.as_view(approve=False), name="ops-reject"
    ),
]
