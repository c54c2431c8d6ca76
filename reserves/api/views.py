"""Operations API for the reserve fund, the cap, defaults and claims."""

import csv
import io

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import pagination, serializers
from rest_framework.response import Response

from controls.api import serializers as s
from controls.api.ops import OpsView
from controls.api.parsing import json_object
from controls.api.schema import cursor_page
from controls.exceptions import InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of, approval_as_json, approval_request

from ..models import Claim, Default, ReserveEntry
from ..reports import jsonable, reserve_report
from ..services.buy_ins import buy_in_request
from ..services.claims import claim_approval_request, claim_as_json, claim_file, claim_reject
from ..services.ledger import reserve_contribute
from ..services.monitoring import insurance_required
from ..services.waterfall import default_as_json, recovery_request

ClaimOut = inline_serializer(
    "Claim",
    {
        "id": serializers.IntegerField(),
        "counterparty": serializers.CharField(),
        "account": serializers.CharField(),
        "status": serializers.ChoiceField(["assessed", "approved", "paid", "rejected"]),
        "loss_hkd": serializers.CharField(),
        "paid_hkd": serializers.CharField(),
        "shortfall_hkd": serializers.CharField(),
        "lines": serializers.ListField(child=serializers.DictField()),
    },
)
DefaultOut = inline_serializer(
    "Default",
    {
        "id": serializers.IntegerField(),
        "operator": serializers.CharField(),
        "as_of": serializers.DateTimeField(),
        "reason": serializers.CharField(),
        "total_loss_hkd": serializers.CharField(),
        "claims": serializers.IntegerField(),
        "waterfall": serializers.ListField(
            child=serializers.DictField(),
            help_text='[{"layer", "amount_hkd"}]: own_assets, insurance, reserve_fund, refill',
        ),
    },
)
ReserveOut = inline_serializer(
    "Reserve",
    {
        "balance_hkd": serializers.CharField(),
        "available_hkd": serializers.CharField(),
        "cap_hkd": serializers.CharField(),
        "effective_cap_hkd": serializers.CharField(),
        "coverage_ratio": serializers.CharField(allow_null=True),
        "recommended_hkd": serializers.CharField(),
        "method": serializers.ListField(child=serializers.CharField()),
        "loss_if_default": serializers.ListField(
            child=serializers.DictField(), help_text='per counterparty {"operator", "loss_hkd", ...}, largest first'
        ),
        "largest_loss_if_default_hkd": serializers.CharField(),
        "cover1_ratio": serializers.CharField(allow_null=True, help_text="available / largest loss if default"),
        "cover1_covered": serializers.BooleanField(),
        "trust_account": serializers.DictField(
            help_text='the fund\'s trust bank account reconciled with its statements: {"account", "state" '
            '(no_account|no_statement|agreed|breaks), "text", "last_statement": {"ref", "closing_date", '
            '"statement_hkd", "ledger_hkd", "difference_hkd", "agreed"}, "matched_entries", "unmatched_entries", '
            '"open_breaks"}'
        ),
    },
)


class ReserveView(OpsView):
    @extend_schema(
        summary="The reserve fund against the cap, with the sizing recommendation", responses={200: ReserveOut}
    )
    def get(self, request):
        return Response(jsonable(reserve_report(as_of=timezone.now())))


class ReserveEntriesView(OpsView):
    @extend_schema(
        summary="Contribute (at once), or ask to withdraw or reverse (four eyes)",
        request=inline_serializer(
            "ReserveEntryIn",
            {
                "kind": serializers.ChoiceField(["contribution", "withdrawal", "reversal"]),
                "amount_hkd": serializers.CharField(required=False),
                "reference": serializers.CharField(),
                "reverses": serializers.CharField(required=False),
            },
        ),
        responses={201: OpenApiTypes.OBJECT, 202: s.ApprovalSerializer},
    )
    def post(self, request):
        data = json_object(request, "kind")
        kind, now = data.get("kind"), timezone.now()
        if kind == ReserveEntry.Kind.CONTRIBUTION:
            entry = reserve_contribute(
                amount_hkd=data.get("amount_hkd"),
                reference=data.get("reference"),
                actor=actor_of(request.user),
                now=now,
            )
            return Response(
                {
                    "id": entry.id,
                    "kind": entry.kind,
                    "amount_hkd": format(entry.amount_hkd, "f"),
                    "reference": entry.reference,
                },
                status=201,
            )
        if kind == ReserveEntry.Kind.WITHDRAWAL:
            payload = {"amount_hkd": data.get("amount_hkd"), "reference": data.get("reference")}
            approval = approval_request(
                kind=ApprovalRequest.Kind.RESERVE_WITHDRAWAL, payload=payload, user=request.user, now=now
            )
        elif kind == ReserveEntry.Kind.REVERSAL:
            payload = {"reverses": data.get("reverses"), "reference": data.get("reference")}
            approval = approval_request(
                kind=ApprovalRequest.Kind.RESERVE_REVERSAL, payload=payload, user=request.user, now=now
            )
        else:
            raise InvalidInput(
                "invalid_field",
                "kind must be contribution, withdrawal or reversal (payouts come from claims)",
                field="kind",
            )
        return Response(approval_as_json(approval), status=202)


class CapView(OpsView):
    @extend_schema(
        summary="Ask to change the cap or its thresholds (four eyes)",
        request=inline_serializer(
            "CapIn",
            {
                "total_hkd": serializers.CharField(),
                "warn_at": serializers.CharField(required=False),
                "settle_at": serializers.CharField(required=False),
                "halt_at": serializers.CharField(required=False),
            },
        ),
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request):
        data = json_object(request, "total_hkd")
        payload = {k: data.get(k) for k in ("total_hkd", "warn_at", "settle_at", "halt_at") if data.get(k) is not None}
        approval = approval_request(
            kind=ApprovalRequest.Kind.CAP_CHANGE, payload=payload, user=request.user, now=timezone.now()
        )
        return Response(approval_as_json(approval), status=202)


class DefaultPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100


class DefaultsView(OpsView):
    @extend_schema(
        summary="Ask to declare a counterparty in default (four eyes; on approval it is closed out)",
        request=inline_serializer(
            "DefaultIn",
            {
                "operator": serializers.CharField(),
                "reason": serializers.CharField(),
                "as_of": serializers.DateTimeField(required=False),
            },
        ),
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request):
        data = json_object(request, "operator")
        payload = {"operator": data.get("operator"), "reason": data.get("reason"), "as_of": data.get("as_of")}
        approval = approval_request(
            kind=ApprovalRequest.Kind.DEFAULT, payload=payload, user=request.user, now=timezone.now()
        )
        return Response(approval_as_json(approval), status=202)

    @extend_schema(
        summary="Defaults, newest first, each with its loss waterfall",
        operation_id="ops_defaults_list",
        responses={200: cursor_page("DefaultPage", DefaultOut)},
    )
    def get(self, request):
        paginator = DefaultPage()
        page = paginator.paginate_queryset(Default.objects.select_related("operator"), request, view=self)
        return paginator.get_paginated_response([default_as_json(d) for d in page])


class DefaultDetailView(OpsView):
    @extend_schema(summary="One default: its waterfall, steps and recoveries", responses={200: DefaultOut})
    def get(self, request, default_id: int):
        default = Default.objects.select_related("operator").filter(pk=default_id).first()
        if default is None:
            raise NotFound("not_found", f"no default {default_id}")
        return Response(default_as_json(default, detail=True))


class DefaultRecoveriesView(OpsView):
    @extend_schema(
        summary="Record a recovery against a default (four eyes; refills the fund)",
        request=inline_serializer(
            "RecoveryIn",
            {
                "source": serializers.ChoiceField(["insurance", "estate", "other"]),
                "amount_hkd": serializers.CharField(),
                "reference": serializers.CharField(),
            },
        ),
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request, default_id: int):
        data = json_object(request, "source")
        approval = recovery_request(default_id=default_id, data=data, user=request.user, now=timezone.now())
        return Response(approval_as_json(approval), status=202)


class ClaimPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100


class ClaimsView(OpsView):
    @extend_schema(
        summary="Claims (filter by status and counterparty)",
        operation_id="ops_claims_list",
        parameters=[OpenApiParameter("status", enum=list(Claim.Status.values)), OpenApiParameter("operator", str)],
        responses={200: cursor_page("ClaimPage", ClaimOut)},
    )
    def get(self, request):
        queryset = Claim.objects.select_related("counterparty").prefetch_related("lines__trade")
        status = request.query_params.get("status")
        if status:
            if status not in Claim.Status.values:
                raise InvalidInput(
                    "invalid_field", f"status must be one of {', '.join(Claim.Status.values)}", field="status"
                )
            queryset = queryset.filter(status=status)
        if request.query_params.get("operator"):
            queryset = queryset.filter(counterparty__code=request.query_params["operator"])
        paginator = ClaimPage()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([claim_as_json(c) for c in page])

    @extend_schema(
        summary="File a claim by hand for another settlement-failure loss, with evidence",
        request=inline_serializer(
            "ClaimIn",
            {
                "counterparty": serializers.CharField(),
                "account": serializers.CharField(),
                "loss_hkd": serializers.CharField(),
                "evidence": serializers.CharField(),
                "trade_id": serializers.CharField(required=False),
            },
        ),
        responses={201: ClaimOut},
    )
    def post(self, request):
        data = json_object(request, "account")
        claim = claim_file(
            counterparty=data.get("counterparty"),
            account=data.get("account"),
            loss_hkd=data.get("loss_hkd"),
            evidence=data.get("evidence"),
            trade_id=data.get("trade_id"),
            user=request.user,
            now=timezone.now(),
        )
        return Response(claim_as_json(claim), status=201)


def _claim(claim_id: int) -> Claim:
    claim = Claim.objects.select_related("counterparty").filter(pk=claim_id).first()
    if claim is None:
        raise NotFound("not_found", f"no claim {claim_id}")
    return claim


class ClaimDetailView(OpsView):
    @extend_schema(summary="One claim with its per-trade working", responses={200: ClaimOut})
    def get(self, request, claim_id: int):
        return Response(claim_as_json(_claim(claim_id)))


class ClaimApproveView(OpsView):
    @extend_schema(
        summary="Ask for a claim's payout (four eyes: a second person approves and the fund pays)",
        request=None,
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request, claim_id: int):
        approval = claim_approval_request(claim_id=claim_id, user=request.user, now=timezone.now())
        return Response(approval_as_json(approval), status=202)


class ClaimRejectView(OpsView):
    write_groups = ("ops_approver",)

    @extend_schema(
        summary="Reject a claim with a reason",
        request=inline_serializer("ClaimReject", {"reason": serializers.CharField()}),
        responses={200: ClaimOut},
    )
    def post(self, request, claim_id: int):
        data = json_object(request, "reason")
        claim = claim_reject(claim_id=claim_id, reason=data.get("reason"), user=request.user, now=timezone.now())
        return Response(claim_as_json(claim))


class ClaimStatementView(OpsView):
    @extend_schema(summary="A client's claim statement (CSV)", responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, claim_id: int):
        claim = claim_as_json(_claim(claim_id))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "claim",
                claim["id"],
                "client",
                claim["account"],
                "counterparty",
                claim["counterparty"],
                "status",
                claim["status"],
            ]
        )
        writer.writerow(
            [
                "trade_id",
                "owed_asset",
                "owed_amount",
                "owed_hkd",
                "retained_asset",
                "retained_amount",
                "retained_hkd",
                "loss_hkd",
            ]
        )
        for line in claim["lines"]:
            writer.writerow(
                [
                    line["trade_id"] or "",
                    line["owed"]["asset"],
                    line["owed"]["amount"],
                    line["owed"]["value_hkd"],
                    line["retained"]["asset"] or "",
                    line["retained"]["amount"],
                    line["retained"]["value_hkd"],
                    line["loss_hkd"],
                ]
            )
        writer.writerow(["total", "", "", "", "", "", "", claim["loss_hkd"]])
        writer.writerow(["paid_hkd", claim["paid_hkd"], "shortfall_hkd", claim["shortfall_hkd"]])
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="claim-{claim["id"]}-{claim["account"]}.csv"'
        return response


class InsuranceView(OpsView):
    @extend_schema(summary="Insurance coverage against the para 18 requirement", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(jsonable(insurance_required(on=timezone.localdate())))


class ClaimBuyInView(OpsView):
    @extend_schema(
        summary="Record the price paid to buy a client's asset back (four eyes; the claim then uses it)",
        request=inline_serializer(
            "BuyInIn",
            {
                "trade_id": serializers.CharField(),
                "price_hkd": serializers.CharField(),
                "evidence": serializers.CharField(),
            },
        ),
        responses={202: s.ApprovalSerializer},
    )
    def post(self, request, claim_id: int):
        data = json_object(request, "trade_id")
        approval = buy_in_request(claim_id=claim_id, data=data, user=request.user, now=timezone.now())
        return Response(approval_as_json(approval), status=202)
