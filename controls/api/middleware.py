"""Refuse NUL characters at the edge of the API.

PostgreSQL cannot store NUL in text, so a NUL in a query parameter or in a
JSON string (the \\u0000 escape) would fail deep inside a query instead of
being refused as bad input. Bodies that are not JSON (statement uploads) are
left to their own parsers.
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
        json_write = request.content_type == "application/json" and request.method in ("POST", "PUT", "PATCH")
        if request.path.startswith("/api/") and json_write:
            body = request.body
            if b"\x00" in body or b"\\u0000" in body:
                return self._refuse("the request body contains a NUL character (\\u0000), which is never valid here")
        return self.get_response(request)

    @staticmethod
    def _refuse(message: str) -> JsonResponse:
        return JsonResponse(error_body("invalid_request", message), status=400)
