"""Cycles for the matching engine, operators and operations keys; deliveries
reported by a counterparty."""

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import pagination, serializers
from rest_framework.response import Response

from settlement.exceptions import NotFound
from settlement.models import Cycle
from settlement.selectors import cycle_as_json
from settlement.services.cycles import cycle_run, delivery_report
from settlement.timestamps import parse_instant

from . import serializers as s
from .auth import Scope
from .views import ScopedView, actor_of, json_object


def parse_as_of(raw: object, *, default: datetime) -> datetime:
    # a cycle cannot take trades not yet executed
    return parse_instant(raw, field="as_of", default=default, not_after=timezone.now())


class CyclePage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50


class CyclesView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)

    def get_permissions(self):
        if self.request.method == "POST":
            self.allowed_scopes = (Scope.OPERATIONS,)
        return super().get_permissions()

    @extend_schema(summary="Cycles, newest first (batches without legs)", responses={200: s.CycleSerializer(many=True)})
    def get(self, request):
        paginator = CyclePage()
        page = paginator.paginate_queryset(Cycle.objects.all(), request, view=self)
        operator = request.user.operator if request.user.scope == Scope.OPERATOR else None
        return paginator.get_paginated_response([cycle_as_json(c, counterparty=operator) for c in page])

    @extend_schema(
        summary="Run a cycle now (operations keys only)",
        request=inline_serializer("CycleRun", {"kind": serializers.ChoiceField(["intraday", "eod"])}),
        responses={201: s.CycleSerializer},
    )
    def post(self, request):
        data = json_object(request, "kind")
        cycle = cycle_run(kind=data.get("kind"), as_of=_minute(timezone.now()), actor=actor_of(request))
        return Response(cycle_as_json(cycle, detail=True), status=201)


class CycleDetailView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)

    @extend_schema(summary="One cycle with its batches and legs", responses={200: s.CycleSerializer})
    def get(self, request, cycle_id: int):
        cycle = Cycle.objects.filter(pk=cycle_id).first()
        if cycle is None:
            raise NotFound("not_found", f"no cycle {cycle_id}")
        operator = request.user.operator if request.user.scope == Scope.OPERATOR else None
        return Response(cycle_as_json(cycle, detail=True, counterparty=operator))


class DeliveriesView(ScopedView):
    allowed_scopes = (Scope.OPERATOR, Scope.ENGINE, Scope.OPERATIONS)

    @extend_schema(
        summary="Tell us how a leg was delivered (a hint; confirmation comes from the chain or the statement)",
        responses={200: s.DeliveryOutSerializer, 201: s.DeliveryOutSerializer},
        request=inline_serializer(
            "Delivery",
            {"tx_hash": serializers.CharField(required=False), "bank_reference": serializers.CharField(required=False)},
        ),
    )
    def post(self, request, leg_id: int):
        data = json_object(request, "tx_hash")
        delivery, created = delivery_report(
            leg_id=leg_id,
            tx_hash=data.get("tx_hash"),
            bank_reference=data.get("bank_reference"),
            operator=request.user.operator,
            actor=actor_of(request),
            now=timezone.now(),
        )
        body = {
            "leg": leg_id,
            "tx_hash": delivery.tx_hash or None,
            "bank_reference": delivery.bank_reference or None,
            "reported_at": delivery.reported_at,
        }
        return Response(body, status=201 if created else 200)


def _minute(moment: datetime) -> datetime:
    """Cycles started by hand or by beat in the same minute are the same cycle."""
    return moment.replace(second=0, microsecond=0)
