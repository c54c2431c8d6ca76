"""This app's endpoints under /api/v1/ (included from config/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("ops/rails/<str:code>/status", views.OpsRailStatusView.as_view(), name="ops-rail-status"),
    path("ops/assets/<str:code>/haircut", views.OpsAssetHaircutView.as_view(), name="ops-asset-haircut"),
]
