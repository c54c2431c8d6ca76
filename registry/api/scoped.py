"""The base of every endpoint an API key calls: a key of an allowed scope.
(Apart from auth.py, which DRF's settings import before its views exist.)"""

from rest_framework.views import APIView

from .auth import HasScope


class ScopedView(APIView):
    permission_classes = [HasScope]
    allowed_scopes: tuple[str, ...] = ()
