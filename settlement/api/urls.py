from django.urls import path

from . import cycles, views

urlpatterns = [
    path("trades", views.TradesView.as_view(), name="trades"),
    path("exposure", views.ExposureView.as_view(), name="exposure"),
    path("exposure/check", views.ExposureCheckView.as_view(), name="exposure-check"),
    path("marks", views.MarksView.as_view(), name="marks"),
    path("obligations", views.ObligationListView.as_view(), name="obligations"),
    path("cycles", cycles.CyclesView.as_view(), name="cycles"),
    path("cycles/<int:cycle_id>", cycles.CycleDetailView.as_view(), name="cycle"),
    path("legs/<int:leg_id>/deliveries", cycles.DeliveriesView.as_view(), name="leg-deliveries"),
    path("ops/cycles", cycles.OpsCyclesView.as_view(), name="ops-cycles"),
    path("ops/legs/<int:leg_id>/confirm", cycles.OpsLegConfirmView.as_view(), name="ops-leg-confirm"),
]
