"""Request rates (DRF throttles on the cache): per principal (an API key or
a staff user) and per client address, whatever the credentials. Failed
authentication has its own, stricter limit (controls.api.auth). Over a
limit: 429 with code ``throttled`` and a Retry-After header."""

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "principal"

    def get_cache_key(self, request, view):
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return None  # anonymous requests count per address only
        key = getattr(user, "key", None)
        ident = f"key:{key.pk}" if key is not None else f"user:{user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(SimpleRateThrottle):
    scope = "address"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
