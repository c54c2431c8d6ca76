"""Operations endpoints for custody: breaks, statement upload, custodian
balance reports, the instruction outbox. Thin: parse, call one service,
shape the answer. Token-authenticated staff (``OpsView``)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import pagination, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FileUploadParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from controls.api.ops import OpsView
from controls.api.parsing import json_object, parse_as_of
from controls.api.schema import cursor_page
from controls.exceptions import InvalidInput, NotFound
from controls.services.approvals import actor_of
from custody.models import Break, Instruction
from custody.selectors import break_as_json
from custody.services.balances import balance_report_as_json, balance_report_record
from custody.services.breaks import break_resolve, break_take
from custody.services.instructions import instruction_as_json, instructions_take
from custody.services.statements import statement_import

MAX_UPLOAD = 20 * 1024 * 1024
MAX_AGE_HOURS = 24 * 366 * 10


class BreakPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 50


def _choice(request, name: str, values: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in values:
        raise InvalidInput("invalid_field", f"{name} must be one of {', '.join(values)}", field=name)
    return value or None


class OpsBreaksView(OpsView):
    @extend_schema(
        summary="Reconciliation breaks (filter by status, kind, counterparty, minimum age)",
        parameters=[
            OpenApiParameter("status", str, enum=Break.Status.values),
            OpenApiParameter("kind", str, enum=Break.Kind.values),
            OpenApiParameter("counterparty", str),
            OpenApiParameter("older_than_hours", int),
        ],
        operation_id="ops_breaks_list",
        responses={200: cursor_page("BreakPage", serializers.DictField())},
    )
    def get(self, request):
        now = timezone.now()
        queryset = Break.objects.select_related("asset", "counterparty").prefetch_related("movements")
        status = _choice(request, "status", Break.Status.values)
        if status:
            queryset = queryset.filter(status=status)
        kind = _choice(request, "kind", Break.Kind.values)
        if kind:
            queryset = queryset.filter(kind=kind)
        counterparty = request.query_params.get("counterparty")
        if counterparty:
            queryset = queryset.filter(counterparty__code=counterparty)
        older = request.query_params.get("older_than_hours")
        if older:
            # ASCII digits, at most ten years: "²" is a digit to str.isdigit, and a
            # billion hours is past what a date can hold
            if not (older.isascii() and older.isdigit()) or int(older) > MAX_AGE_HOURS:
                raise InvalidInput(
                    "invalid_field",
                    f"older_than_hours must be a whole number from 0 to {MAX_AGE_HOURS}",
                    field="older_than_hours",
                )
            queryset = queryset.filter(opened_at__lte=now - timedelta(hours=int(older)))
        paginator = BreakPage()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([break_as_json(b, now=now) for b in page])


def _break_or_404(break_id: int) -> Break:
    brk = Break.objects.select_related("asset", "counterparty").filter(pk=break_id).first()
    if brk is None:
        raise NotFound("not_found", f"no break {break_id}")
    return brk


class OpsBreakDetailView(OpsView):
    @extend_schema(summary="One break with its history", responses={200: OpenApiTypes.OBJECT}, operation_id="ops_break")
    def get(self, request, break_id: int):
        return Response(break_as_json(_break_or_404(break_id), now=timezone.now(), history=True))


class OpsBreakResolveView(OpsView):
    @extend_schema(
        summary="Resolve a break with a note (it keeps its history)",
        request=inline_serializer("BreakResolve", {"note": serializers.CharField()}),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, break_id: int):
        data = json_object(request, "note")
        now = timezone.now()
        brk = break_resolve(break_id=break_id, note=data.get("note") or "", actor=actor_of(request.user), now=now)
        return Response(break_as_json(_break_or_404(brk.id), now=now, history=True))


class OpsBreakTakeView(OpsView):
    @extend_schema(
        summary="Take a break: you own it and it is being investigated",
        request=inline_serializer("BreakTake", {"note": serializers.CharField(required=False)}),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, break_id: int):
        data = json_object(request, "note") if request.body else {}
        now = timezone.now()
        brk = break_take(
            break_id=break_id,
            owner=actor_of(request.user),
            note=data.get("note"),
            actor=actor_of(request.user),
            now=now,
        )
        return Response(break_as_json(_break_or_404(brk.id), now=now, history=True))


class _RawStatementParser(FileUploadParser):
    """The raw file as the request body (any content type but multipart)."""

    media_type = "*/*"

    def get_filename(self, stream, media_type, parser_context):
        return super().get_filename(stream, media_type, parser_context) or "upload"


class _JsonOnly(DefaultContentNegotiation):
    """Always JSON: ``?format=`` names the statement format here, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OpsStatementsView(OpsView):
    parser_classes = [MultiPartParser, _RawStatementParser]
    content_negotiation_class = _JsonOnly

    @extend_schema(
        summary="Upload a bank statement (camt.053 or MT940): multipart field 'file', or the raw file as the body",
        parameters=[OpenApiParameter("format", str, enum=["camt053", "mt940"])],
        request={"multipart/form-data": inline_serializer("StatementUpload", {"file": serializers.FileField()})},
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput(
                "invalid_request", "send the statement as multipart field 'file' (or as the body)", field="file"
            )
        if upload.size > MAX_UPLOAD:
            raise InvalidInput("invalid_field", "the file is larger than 20 MiB", field="file")
        fmt = request.query_params.get("format") or request.data.get("format") or None
        result = statement_import(
            data=upload.read(), filename=upload.name or "", format=fmt, actor=actor_of(request.user), now=timezone.now()
        )
        created = any(s["result"] == "created" for s in result.statements)
        return Response(result.as_json(), status=201 if created else 200)


class OpsBalanceReportsView(OpsView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Record a custodian's statement of balances; differences from the books become breaks",
        request=inline_serializer(
            "BalanceReportIn",
            {
                "source": serializers.CharField(),
                "reference": serializers.CharField(),
                "as_of": serializers.DateTimeField(),
                "lines": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = json_object(request, "lines")
        now = timezone.now()
        if data.get("as_of") is None:
            raise InvalidInput(
                "missing_field", "as_of is required (when the custodian took the balances)", field="as_of"
            )
        report, created = balance_report_record(
            source=data.get("source"),
            reference=data.get("reference"),
            as_of=parse_as_of(data.get("as_of"), default=now),
            lines=data.get("lines"),
            actor=actor_of(request.user),
            now=now,
        )
        return Response(
            balance_report_as_json(report, result="created" if created else "duplicate"), status=201 if created else 200
        )


class InstructionPage(pagination.CursorPagination):
    ordering = "-id"
    page_size = 100


class OpsInstructionsView(OpsView):
    @extend_schema(
        summary="The instruction outbox (filter by status and kind)",
        parameters=[
            OpenApiParameter("status", str, enum=Instruction.Status.values),
            OpenApiParameter("kind", str, enum=Instruction.Kind.values),
        ],
        operation_id="ops_instructions_list",
        responses={200: cursor_page("InstructionPage", serializers.DictField())},
    )
    def get(self, request):
        queryset = Instruction.objects.select_related("asset", "rail", "counterparty")
        status = _choice(request, "status", Instruction.Status.values)
        if status:
            queryset = queryset.filter(status=status)
        kind = _choice(request, "kind", Instruction.Kind.values)
        if kind:
            queryset = queryset.filter(kind=kind)
        paginator = InstructionPage()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([instruction_as_json(i) for i in page])


class OpsInstructionsTakeView(OpsView):
    @extend_schema(
        summary="Mark instructions as taken (sent to the custodian)",
        request=inline_serializer("InstructionsTake", {"ids": serializers.ListField(child=serializers.IntegerField())}),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = json_object(request, "ids")
        taken = instructions_take(ids=data.get("ids"), actor=actor_of(request.user), now=timezone.now())
        return Response({"taken": [instruction_as_json(i) for i in taken]})
