"""Refuse NUL characters at the edge of the API.

PostgreSQL cannot store NUL in text, so a NUL in a query parameter, a path
or a body (raw, or the JSON escape \\u0000) would fail deep inside a query
instead of being refused as bad input. Every write under /api/ is checked
whatever its Content-Type says (the views parse the body as JSON either
way), except multipart uploads, whose files the importers judge themselves.
"""

from django.http import JsonResponse

from .errors import error_body


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in query or "%00" in query:  # admin searches too
            return self._refuse("the query string contains a NUL character")
        if "\x00" in request.path:  # /api/v1/ops/rails/%00/status
            return self._refuse("the path contains a NUL character")
        write = request.method in ("POST", "PUT", "PATCH", "DELETE")
        if request.path.startswith("/api/") and write and request.content_type != "multipart/form-data":
            body = request.body
            if b"\x00" in body or b"\\u0000" in body:
                return self._refuse("the request body contains a NUL character (\\u0000), which is never valid here")
        return self.get_response(request)

    @staticmethod
    def _refuse(message: str) -> JsonResponse:
        return JsonResponse(error_body("invalid_request", message), status=400)
