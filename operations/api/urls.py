"""The operations layer's endpoints under /api/v1/ (included from config/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "ops/notifications/subscriptions/<int:subscription_id>/test",
        views.SubscriptionTestView.as_view(),
        name="ops-notification-test",
    ),
]
