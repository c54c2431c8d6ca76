from django.urls import path

from . import cycles, prefunding, statements, views

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
    path("batches", cycles.BatchesView.as_view(), name="batches"),
    path("credits", cycles.CreditsView.as_view(), name="credits"),
    path("statements/<str:day>", statements.StatementView.as_view(), name="statement"),
    path("batches/<int:batch_id>/affirm", cycles.BatchAffirmView.as_view(), name="batch-affirm"),
    path("batches/<int:batch_id>/dispute", cycles.BatchDisputeView.as_view(), name="batch-dispute"),
    path("ops/batches/<int:batch_id>/hold", cycles.OpsBatchHoldView.as_view(), name="ops-batch-hold"),
    path("ops/batches/<int:batch_id>/release", cycles.OpsBatchReleaseView.as_view(), name="ops-batch-release"),
    path(
        "ops/counterparties/<str:code>/exclude",
        cycles.OpsCounterpartyExcludeView.as_view(),
        name="ops-counterparty-exclude",
    ),
    path(
        "ops/counterparties/<str:code>/include",
        cycles.OpsCounterpartyIncludeView.as_view(),
        name="ops-counterparty-include",
    ),
    # prefunding (DESIGN section 6a)
    path("prefunding/holds", prefunding.HoldsView.as_view(), name="prefunding-holds"),
    path("prefunding/holds/batch", prefunding.HoldsBatchView.as_view(), name="prefunding-holds-batch"),
    path("prefunding/holds/<str:operator>/<path:order_id>", prefunding.HoldView.as_view(), name="prefunding-hold"),
    path("prefunding/funding-events", prefunding.FundingEventsView.as_view(), name="prefunding-funding-events"),
    path(
        "prefunding/accounts/<str:operator>/<path:account>", prefunding.AccountView.as_view(), name="prefunding-account"
    ),
    path("prefunding/cover", prefunding.CoverView.as_view(), name="prefunding-cover"),
    path("prefunding/open-orders", prefunding.OpenOrdersView.as_view(), name="prefunding-open-orders"),
    path(
        "prefunding/open-orders/<int:snapshot_id>",
        prefunding.OpenOrdersDetailView.as_view(),
        name="prefunding-open-orders-detail",
    ),
    path("ops/prefunding/freeze", prefunding.OpsFreezeView.as_view(), name="ops-prefunding-freeze"),
    path("ops/prefunding/freezes", prefunding.OpsFreezesView.as_view(), name="ops-prefunding-freezes"),
    path(
        "ops/prefunding/freeze/<int:freeze_id>/lift",
        prefunding.OpsFreezeLiftView.as_view(),
        name="ops-prefunding-freeze-lift",
    ),
]
