"""Cycles for the matching engine, operators and operations keys; deliveries
reported by a counterparty; batches affirmed or disputed by their
counterparty, held and released by operations; counterparties excluded."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import pagination, serializers
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.api.parsing import json_object, parse_as_of, query_choice, request_actor
from controls.api.schema import cursor_page
from controls.api.serializers import ApprovalSerializer
from controls.exceptions import InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of, approval_as_json, approval_request
from registry.api.auth import Scope
from registry.api.scoped import ScopedView
from registry.models import Operator
from settlement.models import Batch, CarriedCredit, Cycle
from settlement.selectors.credits import credit_as_json
from settlement.selectors.cycles import batch_as_json, batches_for_listing, cycle_as_json
from settlement.services.batch_controls import (
    batch_affirm,
    batch_dispute,
    batch_hold,
    batch_hold_release,
    counterparty_exclude,
    counterparty_include_request,
    exclusion_as_json,
)
from settlement.services.cycles import CycleRun, cycle_start
from settlement.services.deliveries import delivery_report

from . import serializers as s


class CyclePage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50


class CyclesView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)

    def get_permissions(self):
        if self.request.method == "POST":
            self.allowed_scopes = (Scope.OPERATIONS,)
        return super().get_permissions()

    @extend_schema(
        summary="Cycles, newest first (batches without legs)",
        operation_id="cycles_list",
        responses={200: cursor_page("CyclePage", s.CycleSerializer)},
    )
    def get(self, request):
        paginator = CyclePage()
        page = paginator.paginate_queryset(Cycle.objects.all(), request, view=self)
        operator = request.user.operator if request.user.scope == Scope.OPERATOR else None
        return paginator.get_paginated_response([cycle_as_json(c, counterparty=operator) for c in page])

    @extend_schema(
        summary="Run a cycle now (operations keys only)",
        request=inline_serializer("CycleRun", {"kind": serializers.ChoiceField(["intraday", "eod"])}),
        responses={200: s.CycleRunSerializer, 201: s.CycleRunSerializer},
    )
    def post(self, request):
        data = json_object(request, "kind")
        # now, to the microsecond: everything executed up to this moment
        run = cycle_start(kind=data.get("kind"), as_of=timezone.now(), actor=request_actor(request))
        return _run_response(run)


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
            actor=request_actor(request),
            now=timezone.now(),
        )
        body = {
            "leg": leg_id,
            "tx_hash": delivery.tx_hash or None,
            "bank_reference": delivery.bank_reference or None,
            "reported_at": delivery.reported_at,
        }
        return Response(body, status=201 if created else 200)


def _run_response(run: CycleRun) -> Response:
    """201 with the new cycle; 200 with ``"replayed": true`` when a cycle of
    that kind had run at that exact as_of already (nothing new was run)."""
    body = {**cycle_as_json(run.cycle, detail=True), "replayed": run.replayed}
    return Response(body, status=200 if run.replayed else 201)


class OpsCyclesView(OpsView):
    @extend_schema(
        summary="Run a cycle now (optionally for the time it should have run)",
        responses={200: s.CycleRunSerializer, 201: s.CycleRunSerializer},
        request=inline_serializer(
            "OpsCycleRun",
            {"kind": serializers.ChoiceField(["intraday", "eod"]), "as_of": serializers.DateTimeField(required=False)},
        ),
    )
    def post(self, request):
        data = json_object(request, "kind")
        # without as_of: now, to the microsecond (everything executed up to this moment)
        as_of = parse_as_of(data.get("as_of"), default=timezone.now())
        return _run_response(cycle_start(kind=data.get("kind"), as_of=as_of, actor=actor_of(request.user)))


class OpsLegConfirmView(OpsView):
    @extend_schema(
        summary="Ask for a manual leg confirmation (four eyes)",
        request=inline_serializer("LegConfirm", {"evidence": serializers.CharField()}),
        responses={202: ApprovalSerializer},
    )
    def post(self, request, leg_id: int):
        data = json_object(request, "evidence")
        evidence = data.get("evidence")
        if not isinstance(evidence, str) or not evidence.strip():
            raise InvalidInput("invalid_field", "evidence must describe what shows the leg settled", field="evidence")
        approval = approval_request(
            kind=ApprovalRequest.Kind.LEG_CONFIRM,
            payload={"leg_id": leg_id, "evidence": evidence.strip()},
            user=request.user,
            now=timezone.now(),
        )
        return Response(approval_as_json(approval), status=202)


# --- batches: the counterparty's affirmation, operations' hold and exclusion ---------------------


class BatchPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100


def _counterparty(request) -> Operator | None:
    """An overseas operator's key sees and answers for its own batches only."""
    return request.user.operator if request.user.scope == Scope.OPERATOR else None


class BatchesView(ScopedView):
    allowed_scopes = (Scope.OPERATOR, Scope.OPERATIONS)

    @extend_schema(
        summary="Batches with their legs, newest first (an operator's key: its own)",
        parameters=[
            OpenApiParameter("status", str, enum=Batch.Status.values),
            OpenApiParameter("affirmation", str, enum=Batch.Affirmation.values),
        ],
        responses={200: cursor_page("BatchPage", s.BatchSerializer)},
    )
    def get(self, request):
        batches = batches_for_listing(Batch.objects.all())
        own = _counterparty(request)
        if own is not None:
            batches = batches.filter(counterparty=own)
        for name, values in (("status", Batch.Status.values), ("affirmation", Batch.Affirmation.values)):
            value = query_choice(request, name, values)
            if value:
                batches = batches.filter(**{name: value})
        paginator = BatchPage()
        page = paginator.paginate_queryset(batches, request, view=self)
        return paginator.get_paginated_response([batch_as_json(b) for b in page])


class BatchAffirmView(ScopedView):
    allowed_scopes = (Scope.OPERATOR,)

    @extend_schema(summary="Affirm a batch (its counterparty's key)", request=None, responses={200: s.BatchSerializer})
    def post(self, request, batch_id: int):
        batch = batch_affirm(
            batch_id=batch_id, operator=request.user.operator, actor=request_actor(request), now=timezone.now()
        )
        return Response(batch_as_json(batch))


class BatchDisputeView(ScopedView):
    allowed_scopes = (Scope.OPERATOR,)

    @extend_schema(
        summary="Dispute a batch (its counterparty's key): holds it and opens a break",
        request=inline_serializer("BatchDispute", {"reason": serializers.CharField()}),
        responses={200: s.BatchSerializer},
    )
    def post(self, request, batch_id: int):
        data = json_object(request, "reason")
        batch = batch_dispute(
            batch_id=batch_id,
            operator=request.user.operator,
            reason=data.get("reason"),
            actor=request_actor(request),
            now=timezone.now(),
        )
        return Response(batch_as_json(batch))


class OpsBatchHoldView(OpsView):
    @extend_schema(
        summary="Hold a batch: its deadlines stop and nothing more is instructed",
        request=inline_serializer("BatchHold", {"reason": serializers.CharField()}),
        responses={200: s.BatchSerializer},
    )
    def post(self, request, batch_id: int):
        data = json_object(request, "reason")
        batch = batch_hold(
            batch_id=batch_id, reason=data.get("reason"), actor=actor_of(request.user), now=timezone.now()
        )
        return Response(batch_as_json(batch))


class OpsBatchReleaseView(OpsView):
    @extend_schema(
        summary="Release a held batch: deadlines move on by the hold, instructions resume",
        request=inline_serializer("BatchRelease", {"reason": serializers.CharField(required=False)}),
        responses={200: s.BatchSerializer},
    )
    def post(self, request, batch_id: int):
        data = json_object(request, "reason") if request.body else {}
        batch = batch_hold_release(
            batch_id=batch_id, reason=data.get("reason"), actor=actor_of(request.user), now=timezone.now()
        )
        return Response(batch_as_json(batch))


class OpsCounterpartyExcludeView(OpsView):
    @extend_schema(
        summary="Leave a counterparty out of coming cycles (at once)",
        request=inline_serializer("CounterpartyExclude", {"reason": serializers.CharField()}),
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
    )
    def post(self, request, code: str):
        data = json_object(request, "reason")
        exclusion, created = counterparty_exclude(
            code=code, reason=data.get("reason"), actor=actor_of(request.user), now=timezone.now()
        )
        return Response(exclusion_as_json(exclusion), status=201 if created else 200)


class OpsCounterpartyIncludeView(OpsView):
    @extend_schema(
        summary="Ask to take an excluded counterparty back into the cycles (four eyes)",
        request=inline_serializer("CounterpartyInclude", {"reason": serializers.CharField(required=False)}),
        responses={202: ApprovalSerializer},
    )
    def post(self, request, code: str):
        data = json_object(request, "reason") if request.body else {}
        approval = counterparty_include_request(
            code=code, reason=data.get("reason"), user=request.user, now=timezone.now()
        )
        return Response(approval_as_json(approval), status=202)


class CreditPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100


class CreditsView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)

    @extend_schema(
        summary="Carried credits: what moved for a failed batch, netted into the next (an operator's key: its own)",
        parameters=[
            OpenApiParameter("status", str, enum=CarriedCredit.Status.values),
            OpenApiParameter("counterparty", str),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        credits = CarriedCredit.objects.select_related("counterparty", "asset", "source_leg")
        own = _counterparty(request)
        if own is not None:
            credits = credits.filter(counterparty=own)
        status = query_choice(request, "status", CarriedCredit.Status.values)
        if status:
            credits = credits.filter(status=status)
        code = request.query_params.get("counterparty")
        if code:
            credits = credits.filter(counterparty__code=code)
        paginator = CreditPage()
        page = paginator.paginate_queryset(credits, request, view=self)
        return paginator.get_paginated_response([credit_as_json(c) for c in page])
