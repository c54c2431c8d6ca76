"""Daily settlement statements for counterparties (an operator's key: its
own) and operations (``?counterparty=``): JSON, or CSV with ``?format=csv``."""

from datetime import date

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from controls.api.parsing import query_choice
from controls.exceptions import InvalidInput, NotFound
from registry.api.auth import Scope
from registry.api.scoped import ScopedView
from settlement.models import SettlementStatement
from settlement.services.statements import statement_as_json


class CSVRenderer(BaseRenderer):
    """``?format=csv``: the statement's CSV as kept (an error stays JSON)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode() if isinstance(data, str) else orjson.dumps(data)


class StatementView(ScopedView):
    allowed_scopes = (Scope.OPERATOR, Scope.OPERATIONS)
    renderer_classes = [JSONRenderer, CSVRenderer]

    def handle_exception(self, exc):
        """An error is JSON (``{"code", "message", "field"}``) and says so in
        its Content-Type, whatever ``?format=`` asked for."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        summary="A counterparty's daily settlement statement (latest version unless ?version=)",
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"]),
            OpenApiParameter("version", int),
            OpenApiParameter("counterparty", str, description="operations keys: whose statement"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, day: str):
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise InvalidInput("invalid_field", "date must be YYYY-MM-DD", field="date") from None
        if request.user.scope == Scope.OPERATOR:
            code = request.user.operator.code
        else:
            code = request.query_params.get("counterparty") or ""
            if not code:
                raise InvalidInput(
                    "missing_field", "counterparty is required for an operations key", field="counterparty"
                )
        statements = SettlementStatement.objects.select_related("counterparty").filter(
            counterparty__code=code, day=when
        )
        version = request.query_params.get("version")
        if version:
            if not version.isdigit():
                raise InvalidInput("invalid_field", "version must be a whole number", field="version")
            statements = statements.filter(version=int(version))
        statement = statements.order_by("-version").first()
        if statement is None:
            raise NotFound(
                "not_found", f"no statement for {code} on {when} (statements are made after the day's cut-off)"
            )
        if query_choice(request, "format", ["json", "csv"]) == "csv":
            filename = f"statement-{code}-{when}-v{statement.version}.csv"
            return Response(statement.csv, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return Response(statement_as_json(statement))
