"""This app's endpoints under /api/v1/ (included from config/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("ops/reserve", views.ReserveView.as_view(), name="ops-reserve"),
    path("ops/reserve/entries", views.ReserveEntriesView.as_view(), name="ops-reserve-entries"),
    path("ops/cap", views.CapView.as_view(), name="ops-cap"),
    path("ops/defaults", views.DefaultsView.as_view(), name="ops-defaults"),
    path("ops/defaults/<int:default_id>", views.DefaultDetailView.as_view(), name="ops-default"),
    path(
        "ops/defaults/<int:default_id>/recoveries", views.DefaultRecoveriesView.as_view(), name="ops-default-recoveries"
    ),
    path("ops/insurance", views.InsuranceView.as_view(), name="ops-insurance"),
    path("ops/claims", views.ClaimsView.as_view(), name="ops-claims"),
    path("ops/claims/<int:claim_id>", views.ClaimDetailView.as_view(), name="ops-claim"),
    path("ops/claims/<int:claim_id>/approve", views.ClaimApproveView.as_view(), name="ops-claim-approve"),
    path("ops/claims/<int:claim_id>/reject", views.ClaimRejectView.as_view(), name="ops-claim-reject"),
    path("ops/claims/<int:claim_id>/buy-ins", views.ClaimBuyInView.as_view(), name="ops-claim-buy-ins"),
    path("ops/claims/<int:claim_id>/statement", views.ClaimStatementView.as_view(), name="ops-claim-statement"),
]
