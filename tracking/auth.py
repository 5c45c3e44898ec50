"""Token auth for sockets opened by API clients (the simulator, benchmarks, native apps).

Browsers use the session cookie (Channels' AuthMiddlewareStack); API clients pass `?token=<key>`
or an `Authorization: Token <key>` header, and then the token alone decides who they are.
"""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from django.contrib.auth.models import AnonymousUser

from tracking.threads import for_scope


def _token_user(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else AnonymousUser()


_user_for_token = for_scope(_token_user)


class TokenAuthMiddleware:
    """A socket that brings a token is authenticated by the token alone; any other goes through
    Channels' session stack (browsers). Token clients -- apps, the simulator, the benchmark --
    then skip the cookie parsing, the session object and the session lookup's hop to the shared
    database thread, and their scope holds no session: less work per connection and less memory
    per idle socket."""

    def __init__(self, app):
        self.app = app
        self.session_app = AuthMiddlewareStack(app)

    async def __call__(self, scope, receive, send):
        key = _token_from_scope(scope)
        if key is None:
            return await self.session_app(scope, receive, send)
        user = await _user_for_token(scope, key)
        return await self.app({**scope, "user": user}, receive, send)


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin1").split()
            if len(parts) == 2 and parts[0].lower() == "token":
                return parts[1]
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("token") or [None])[0]
