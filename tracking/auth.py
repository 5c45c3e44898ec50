"""Token auth for sockets opened by API clients (the simulator, benchmarks, native apps).

Browsers use the session cookie (AuthMiddlewareStack); a client without one may pass
`?token=<key>` or an `Authorization: Token <key>` header.
"""

from urllib.parse import parse_qs

from django.contrib.auth.models import AnonymousUser

from tracking.threads import for_scope


def _token_user(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else AnonymousUser()


_user_for_token = for_scope(_token_user)


class TokenAuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = _token_from_scope(scope)
            if key:
                scope = {**scope, "user": await _user_for_token(scope, key)}
        return await self.app(scope, receive, send)


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin1").split()
            if len(parts) == 2 and parts[0].lower() == "token":
                return parts[1]
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("token") or [None])[0]
