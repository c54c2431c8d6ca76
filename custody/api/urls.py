"""This app's endpoints under /api/v1/ (included from config/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("ops/breaks", views.OpsBreaksView.as_view(), name="ops-breaks"),
    path("ops/breaks/<int:break_id>", views.OpsBreakDetailView.as_view(), name="ops-break"),
    path("ops/breaks/<int:break_id>/resolve", views.OpsBreakResolveView.as_view(), name="ops-break-resolve"),
    path("ops/breaks/<int:break_id>/take", views.OpsBreakTakeView.as_view(), name="ops-break-take"),
    path("ops/statements", views.OpsStatementsView.as_view(), name="ops-statements"),
    path("ops/balance-reports", views.OpsBalanceReportsView.as_view(), name="ops-balance-reports"),
    path("ops/instructions", views.OpsInstructionsView.as_view(), name="ops-instructions"),
    path("ops/instructions/take", views.OpsInstructionsTakeView.as_view(), name="ops-instructions-take"),
]
