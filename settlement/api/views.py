"""One view per endpoint: parse, call one service or selector, shape the answer."""

from datetime import timedelta

import django_filters
from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, pagination
from rest_framework.response import Response

from controls.api.parsing import json_body, json_object, request_actor
from controls.exceptions import InvalidInput
from registry.api.auth import HasScope, Scope
from registry.api.scoped import ScopedView
from registry.models import Asset
from registry.selectors import HKD
from settlement.models import Obligation
from settlement.selectors.exposure import exposure_get
from settlement.selectors.exposure_check import exposure_check
from settlement.services.marks import marks_post
from settlement.services.reservations import exposure_reserve
from settlement.services.trades import trades_ingest

from . import serializers as s


class TradesView(ScopedView):
    allowed_scopes = (Scope.ENGINE,)

    @extend_schema(
        summary="Report matched trades (1 to 10,000)",
        request=s.TradesInSerializer,
        responses={200: s.TradesOutSerializer},
    )
    def post(self, request):
        data, text_storable = json_body(request, "trades")
        items = data.get("trades")
        if not isinstance(items, list):
            raise InvalidInput("invalid_request", "trades must be a list of trade objects", field="trades")
        if not items:
            raise InvalidInput("empty_batch", "trades must hold at least one trade", field="trades")
        if len(items) > settings.TRADE_BATCH_MAX:
            raise InvalidInput(
                "too_many_items",
                f"at most {settings.TRADE_BATCH_MAX:,} trades per request, got {len(items):,}",
                field="trades",
            )
        result = trades_ingest(items=items, actor=request_actor(request), text_checked=text_storable)
        return Response(result.as_json())


class ExposureView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATIONS)

    @extend_schema(
        summary="Unsettled exposure, the cap and the state",
        parameters=[OpenApiParameter("method", enum=["gross", "net"], required=False)],
        responses={200: s.ExposureSerializer},
    )
    def get(self, request):
        method = request.query_params.get("method", "gross")
        if method not in ("gross", "net"):
            raise InvalidInput("invalid_field", "method must be 'gross' or 'net'", field="method")
        return Response(exposure_get(as_of=timezone.now(), method=method).as_json())


class ExposureCheckView(ScopedView):
    allowed_scopes = (Scope.ENGINE,)

    @extend_schema(
        summary="Pre-trade check: may home take on this receivable?",
        request=s.ExposureCheckInSerializer,
        responses={200: s.ExposureCheckOutSerializer},
    )
    def post(self, request):
        data = json_object(request, "counterparty")
        reserve = data.get("reserve", False)
        if not isinstance(reserve, bool):
            raise InvalidInput("invalid_field", "reserve must be true or false", field="reserve")
        asked = {
            "counterparty": data.get("counterparty"),
            "asset": data.get("asset"),
            "amount": data.get("amount"),
            "account": data.get("account"),
        }
        if reserve:
            result = exposure_reserve(**asked, actor=request_actor(request), as_of=timezone.now())
        else:
            result = exposure_check(**asked, as_of=timezone.now())
        return Response(result.as_json())


class MarksView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATIONS)

    @extend_schema(summary="Current marks in HKD", responses={200: s.MarksOutSerializer})
    def get(self, request):
        stale_before = timezone.now() - timedelta(seconds=settings.MARK_STALE_AFTER_SECONDS)
        marks = []
        for asset in Asset.objects.order_by("code"):
            is_hkd = asset.code == HKD
            price = "1" if is_hkd else (format(asset.mark_hkd.normalize(), "f") if asset.mark_hkd is not None else None)
            marks.append(
                {
                    "asset": asset.code,
                    "price_hkd": price,
                    "as_of": asset.mark_as_of,
                    "source": "valuation currency" if is_hkd else asset.mark_source,
                    "stale": not is_hkd and (asset.mark_as_of is None or asset.mark_as_of < stale_before),
                }
            )
        return Response({"marks": marks})

    @extend_schema(
        summary="Post marks (prices in HKD)",
        request=s.MarksInSerializer,
        responses={200: s.MarksPostedSerializer},
    )
    def post(self, request):
        data = json_object(request, "marks")
        created = marks_post(marks=data.get("marks"), actor=request_actor(request))
        return Response(
            {
                "accepted": len(created),
                "marks": [
                    {
                        "asset": m.asset.code,
                        "price_hkd": format(m.price_hkd.normalize(), "f"),
                        "as_of": m.as_of,
                        "source": m.source,
                    }
                    for m in created
                ],
            }
        )


class ObligationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Obligation.Status.choices)
    direction = django_filters.ChoiceFilter(choices=Obligation.Direction.choices)
    counterparty = django_filters.CharFilter(field_name="counterparty__code")
    asset = django_filters.CharFilter(field_name="asset__code")
    trade_id = django_filters.CharFilter(field_name="trade__trade_id")

    class Meta:
        model = Obligation
        fields = ["status", "direction", "counterparty", "asset", "trade_id"]


class NewestFirst(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ObligationListView(generics.ListAPIView):
    """Obligations, newest first. An overseas operator's key sees only its own."""

    permission_classes = [HasScope]
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)
    serializer_class = s.ObligationSerializer
    filterset_class = ObligationFilter
    pagination_class = NewestFirst

    def get_queryset(self):
        queryset = Obligation.objects.select_related("trade", "counterparty", "debtor", "creditor", "asset")
        if getattr(self, "swagger_fake_view", False):  # schema generation has no key
            return queryset.none()
        principal = self.request.user
        if principal.scope == Scope.OPERATOR:
            queryset = queryset.filter(counterparty=principal.operator)
        return queryset
