"""Prefunding endpoints (DESIGN section 6a): one view per endpoint, each
parses and calls one service or selector.

Who may call what: the engine's key places, amends and releases holds for
any operator (it acts for home and relays overseas orders) and posts its
open orders; an operator's key records funding events for its own accounts
and reads its own accounts, holds and cover; operations keys read
everything; freezes are for operations staff (``Token``), and lifting one
needs four eyes.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.api.parsing import json_object, request_actor
from controls.api.serializers import ApprovalSerializer
from controls.exceptions import Forbidden, InvalidInput, NotFound
from controls.services.approvals import actor_of, approval_as_json
from registry.api.auth import Scope
from registry.api.scoped import ScopedView
from registry.models import Operator
from settlement.models import OpenOrdersSnapshot, PrefundingFreeze
from settlement.selectors.prefunding import account_balances, cover_compute
from settlement.services.prefunding import (
    freeze_as_json,
    freeze_create,
    freeze_lift_request,
    funding_event_record,
    hold_amend,
    hold_get,
    hold_release,
    holds_place,
    open_orders_as_json,
    open_orders_receive,
)

READ_SCOPES = (Scope.ENGINE, Scope.OPERATOR, Scope.OPERATIONS)


class FastJSONRenderer(JSONRenderer):
    """orjson: a batch of 1,000 hold answers renders in a fraction of the
    standard encoder's time (every amount and instant is already a string)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else orjson.dumps(data)


def _own(request, operator: str) -> None:
    """An operator's key reads only its own operator's data."""
    principal = request.user
    if principal.scope == Scope.OPERATOR and principal.operator.code != operator:
        raise Forbidden("forbidden", f"this key acts for {principal.operator.code}, not {operator}")


# --- shapes for the schema ---------------------------------------------------------------------

HoldIn = inline_serializer(
    "PrefundingHoldIn",
    {
        "order_id": serializers.CharField(max_length=64),
        "operator": serializers.CharField(help_text="the order's operator"),
        "account": serializers.CharField(help_text="the client's reference on that operator"),
        "asset": serializers.CharField(help_text="the settlement asset the order pays with"),
        "amount": serializers.CharField(help_text="decimal string at the asset's scale"),
        "expires_at": serializers.DateTimeField(required=False, help_text="default and maximum: settings"),
    },
)
HoldOut = inline_serializer(
    "PrefundingHold",
    {
        "hold_id": serializers.IntegerField(),
        "order_id": serializers.CharField(),
        "operator": serializers.CharField(),
        "account": serializers.CharField(),
        "asset": serializers.CharField(),
        "amount": serializers.CharField(),
        "consumed": serializers.CharField(),
        "remaining": serializers.CharField(),
        "status": serializers.ChoiceField(["held", "partially_consumed", "consumed", "released", "expired"]),
        "available_after": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
        "created_at": serializers.DateTimeField(),
    },
)
Refusal = inline_serializer(
    "PrefundingRefusal",
    {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "field": serializers.CharField(required=False),
        "available": serializers.CharField(required=False, help_text="with insufficient_prefunding"),
    },
)


# --- holds -----------------------------------------------------------------------------------------


class HoldsView(ScopedView):
    allowed_scopes = (Scope.ENGINE,)
    renderer_classes = [FastJSONRenderer]

    @extend_schema(
        summary="Place a prefunding hold for an order (201 new, 200 the same order again)",
        request=HoldIn,
        responses={200: HoldOut, 201: HoldOut, 400: Refusal, 409: Refusal},
    )
    def post(self, request):
        data = json_object(request, "order_id")
        result = holds_place(items=[data], actor=request_actor(request), now=timezone.now())[0]
        return Response(result.body, status=result.status_code)


class HoldsBatchView(ScopedView):
    allowed_scopes = (Scope.ENGINE,)
    renderer_classes = [FastJSONRenderer]

    @extend_schema(
        summary="Place up to 1,000 holds, each judged on its own",
        request=inline_serializer("PrefundingHoldsIn", {"holds": serializers.ListField(child=serializers.DictField())}),
        responses={
            200: inline_serializer(
                "PrefundingHoldsOut", {"results": serializers.ListField(child=serializers.DictField())}
            )
        },
    )
    def post(self, request):
        data = json_object(request, "holds")
        items = data.get("holds")
        if not isinstance(items, list):
            raise InvalidInput("invalid_request", "holds must be a list of hold objects", field="holds")
        if not items:
            raise InvalidInput("empty_batch", "holds must hold at least one hold", field="holds")
        limit = settings.PREFUNDING_HOLD_BATCH_MAX
        if len(items) > limit:
            raise InvalidInput(
                "too_many_items", f"at most {limit:,} holds per request, got {len(items):,}", field="holds"
            )
        results = holds_place(items=items, actor=request_actor(request), now=timezone.now())
        return Response({"results": [r.as_json() for r in results]})


class HoldView(ScopedView):
    allowed_scopes = READ_SCOPES
    renderer_classes = [FastJSONRenderer]

    def get_permissions(self):
        if self.request.method != "GET":
            self.allowed_scopes = (Scope.ENGINE,)
        return super().get_permissions()

    @extend_schema(summary="A hold's state (expiry applied)", responses={200: HoldOut}, operation_id="prefunding_hold")
    def get(self, request, operator: str, order_id: str):
        _own(request, operator)
        return Response(hold_get(operator=operator, order_id=order_id, now=timezone.now()))

    @extend_schema(
        summary="Amend a hold: amount down only, or expires_at later only",
        request=inline_serializer(
            "PrefundingHoldAmend",
            {"amount": serializers.CharField(required=False), "expires_at": serializers.DateTimeField(required=False)},
        ),
        responses={200: HoldOut, 400: Refusal, 409: Refusal},
    )
    def patch(self, request, operator: str, order_id: str):
        data = json_object(request, "amount")
        body = hold_amend(
            operator=operator,
            order_id=order_id,
            amount=data.get("amount"),
            expires_at=data.get("expires_at"),
            actor=request_actor(request),
            now=timezone.now(),
        )
        return Response(body)

    @extend_schema(summary="Release what remains of a hold (200 however often)", responses={200: HoldOut})
    def delete(self, request, operator: str, order_id: str):
        return Response(
            hold_release(operator=operator, order_id=order_id, actor=request_actor(request), now=timezone.now())
        )


# --- funding, reads ------------------------------------------------------------------------------


class FundingEventsView(ScopedView):
    allowed_scopes = (Scope.OPERATOR, Scope.OPERATIONS)

    @extend_schema(
        summary="Record a funding event for one of your clients' accounts (idempotent by event_id)",
        request=inline_serializer(
            "FundingEventIn",
            {
                "event_id": serializers.CharField(max_length=64),
                "account": serializers.CharField(),
                "asset": serializers.CharField(),
                "kind": serializers.ChoiceField(
                    ["deposit", "withdrawal_reserve", "withdrawal_commit", "withdrawal_abort", "adjustment"]
                ),
                "amount": serializers.CharField(),
                "occurred_at": serializers.DateTimeField(),
                "reference": serializers.CharField(
                    required=False, help_text="a commit or abort: the reserve's event_id"
                ),
                "operator": serializers.CharField(required=False, help_text="operations keys only"),
            },
        ),
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT, 409: Refusal},
    )
    def post(self, request):
        data = json_object(request, "event_id")
        principal = request.user
        if principal.scope == Scope.OPERATOR:
            if data.get("operator") not in (None, principal.operator.code):
                raise Forbidden("forbidden", f"this key records funding events for {principal.operator.code} only")
            operator = principal.operator.code
        else:
            operator = data.get("operator")
            if not isinstance(operator, str) or not operator:
                raise InvalidInput("missing_field", "operator is required with an operations key", field="operator")
        result, created = funding_event_record(
            item=data, operator=operator, actor=request_actor(request), now=timezone.now()
        )
        return Response(result, status=201 if created else 200)


class AccountView(ScopedView):
    allowed_scopes = READ_SCOPES

    @extend_schema(
        summary="An account's prefunded balances per asset",
        responses={
            200: inline_serializer(
                "PrefundingAccount",
                {
                    "operator": serializers.CharField(),
                    "account": serializers.CharField(),
                    "balances": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request, operator: str, account: str):
        _own(request, operator)
        found = Operator.objects.filter(code=operator).only("id").first()
        if found is None:
            raise NotFound("not_found", f"no operator {operator!r}")
        balances = account_balances(operator_id=found.id, account=account, now=timezone.now())
        return Response({"operator": operator, "account": account, "balances": balances})


class CoverView(ScopedView):
    allowed_scopes = READ_SCOPES

    @extend_schema(
        summary="Cover per operator and asset against the designated custodians' attestations",
        parameters=[OpenApiParameter("operator", str), OpenApiParameter("asset", str)],
        responses={
            200: inline_serializer(
                "PrefundingCoverList",
                {"as_of": serializers.DateTimeField(), "cover": serializers.ListField(child=serializers.DictField())},
            )
        },
    )
    def get(self, request):
        now = timezone.now()
        operator = request.query_params.get("operator")
        if request.user.scope == Scope.OPERATOR:
            if operator not in (None, request.user.operator.code):
                raise Forbidden("forbidden", f"this key reads the cover of {request.user.operator.code} only")
            operator = request.user.operator.code
        asset = request.query_params.get("asset")
        covers = [
            c.as_json()
            for c in cover_compute(as_of=now)
            if (operator is None or c.operator == operator) and (asset is None or c.asset == asset)
        ]
        return Response({"as_of": now.isoformat().replace("+00:00", "Z"), "cover": covers})


# --- open orders ---------------------------------------------------------------------------------


class OpenOrdersView(ScopedView):
    allowed_scopes = (Scope.ENGINE,)

    @extend_schema(
        summary="The engine's open orders at as_of, reconciled with the open holds (breaks for differences)",
        request=inline_serializer(
            "OpenOrdersIn",
            {"as_of": serializers.DateTimeField(), "order_ids": serializers.ListField(child=serializers.JSONField())},
        ),
        responses={202: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = json_object(request, "order_ids")
        if "order_ids" not in data:
            raise InvalidInput("missing_field", "order_ids is required", field="order_ids")
        snapshot = open_orders_receive(
            as_of=data.get("as_of"), order_ids=data.get("order_ids"), actor=request_actor(request), now=timezone.now()
        )
        snapshot.refresh_from_db()  # reconciled already when the task ran at commit (eager workers)
        return Response(open_orders_as_json(snapshot), status=202)


class OpenOrdersDetailView(ScopedView):
    allowed_scopes = (Scope.ENGINE, Scope.OPERATIONS)

    @extend_schema(
        summary="One open-orders list and what its reconciliation found", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, snapshot_id: int):
        snapshot = OpenOrdersSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise NotFound("not_found", f"no open-orders list {snapshot_id}")
        return Response(open_orders_as_json(snapshot))


# --- operations: freezes -----------------------------------------------------------------------


class OpsFreezeView(OpsView):
    @extend_schema(
        summary="Freeze prefunding for an operator, an account or an asset (at once)",
        request=inline_serializer(
            "PrefundingFreezeIn",
            {
                "operator": serializers.CharField(),
                "account": serializers.CharField(required=False),
                "asset": serializers.CharField(required=False),
                "release_open_holds": serializers.BooleanField(required=False),
                "reason": serializers.CharField(required=False),
            },
        ),
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = json_object(request, "operator")
        freeze = freeze_create(
            operator=data.get("operator"),
            account=data.get("account"),
            asset=data.get("asset"),
            release_open_holds=data.get("release_open_holds", False),
            reason=data.get("reason"),
            actor=actor_of(request.user),
            now=timezone.now(),
        )
        return Response(freeze_as_json(freeze), status=201)


class OpsFreezesView(OpsView):
    @extend_schema(
        summary="Prefunding freezes (filter by status)",
        parameters=[OpenApiParameter("status", str, enum=PrefundingFreeze.Status.values)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        queryset = PrefundingFreeze.objects.select_related("operator", "asset").order_by("-id")
        status = request.query_params.get("status")
        if status:
            if status not in PrefundingFreeze.Status.values:
                raise InvalidInput(
                    "invalid_field",
                    f"status must be one of {', '.join(PrefundingFreeze.Status.values)}",
                    field="status",
                )
            queryset = queryset.filter(status=status)
        return Response({"results": [freeze_as_json(f) for f in queryset[:500]]})


class OpsFreezeLiftView(OpsView):
    @extend_schema(
        summary="Ask to lift a freeze (four eyes: a different ops_approver approves)",
        request=inline_serializer("PrefundingLift", {"reason": serializers.CharField(required=False)}),
        responses={202: ApprovalSerializer},
    )
    def post(self, request, freeze_id: int):
        data = json_object(request, "reason") if request.body else {}
        approval = freeze_lift_request(
            freeze_id=freeze_id, reason=data.get("reason"), user=request.user, now=timezone.now()
        )
        return Response(approval_as_json(approval), status=202)
