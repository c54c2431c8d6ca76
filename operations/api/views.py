"""Operations API for notifications: send a sample to a subscriber."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.exceptions import NotFound
from controls.services.approvals import actor_of

from ..models import NotificationDelivery, Subscription
from ..services.notifications import notification_sample
from ..tasks import deliveries_queue

DeliveryOut = inline_serializer(
    "NotificationDelivery",
    {
        "delivery_id": serializers.IntegerField(),
        "subscription": serializers.CharField(),
        "status": serializers.ChoiceField(NotificationDelivery.Status.values),
        "attempts": serializers.IntegerField(),
        "last_error": serializers.CharField(),
        "response_status": serializers.IntegerField(allow_null=True),
    },
)


class SubscriptionTestView(OpsView):
    @extend_schema(
        summary="Send a sample notification to one subscription (signed like any other)",
        request=None,
        responses={201: DeliveryOut},
    )
    def post(self, request, subscription_id: int):
        subscription = Subscription.objects.filter(pk=subscription_id).first()
        if subscription is None:
            raise NotFound("not_found", f"no subscription {subscription_id}", field="subscription_id")
        delivery = notification_sample(subscription=subscription, actor=actor_of(request.user), now=timezone.now())
        deliveries_queue([delivery.id])
        delivery.refresh_from_db()
        return Response(
            {
                "delivery_id": delivery.id,
                "subscription": subscription.name,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_error": delivery.last_error,
                "response_status": delivery.response_status,
            },
            status=201,
        )
