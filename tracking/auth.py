"""Token auth for sockets opened by API clients (the simulator, benchmarks, native apps).

Browsers use the session cookie (Channels' AuthMiddlewareStack); API clients pass `?token=<key>`
or an `Authorization: Token <key>` header, and then the token alone decides who they are.
"""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import LazyObject, empty

from campus_errand.compiled import Compiled
from tracking.threads import for_scope


def _token_with_user(key: str):
    from rest_framework.authtoken.models import Token

    return Token.objects.select_related("user").filter(key=key)


_token_read = Compiled(_token_with_user, str)  # every API socket: compiled once


def _token_user(key: str):
    token = _token_read.first(key)
    return token.user if token and token.user.is_active else AnonymousUser()


class TokenUser(LazyObject):
    """The user a socket's token names, read on first use. Its first use happens in a database
    thread: the order socket's snapshot and the rider socket's check read it in the trip they
    make anyway (one hop to a thread per connection instead of two); a consumer that needs the
    user on the event loop first awaits `socket_user(scope)`."""

    def __init__(self, key: str):
        super().__init__()
        self.__dict__["_key"] = key

    def _setup(self):
        self._wrapped = _token_user(self.__dict__["_key"])


def _resolve(user: TokenUser):
    user._setup()


_resolve_in_thread = for_scope(_resolve)


async def socket_user(scope):
    """The socket's user, read now if it is a token's and not read yet."""
    user = scope["user"]
    if isinstance(user, TokenUser) and user._wrapped is empty:
        await _resolve_in_thread(scope, user)
    return user


class TokenAuthMiddleware:
    """A socket that brings a token is authenticated by the token alone; any other goes through
    Channels' session stack (browsers). Token clients -- apps, the simulator, the benchmark --
    then skip the cookie parsing, the session object and the session lookup's hop to the shared
    database thread, and their scope holds no session: less work per connection and less memory
    per idle socket. The token is looked up when the consumer first needs the user (TokenUser)."""

    def __init__(self, app):
        self.app = app
        self.session_app = AuthMiddlewareStack(app)

    async def __call__(self, scope, receive, send):
        key = _token_from_scope(scope)
        if key is None:
            return await self.session_app(scope, receive, send)
        return await self.app({**scope, "user": TokenUser(key)}, receive, send)


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin1").split()
            if len(parts) == 2 and parts[0].lower() == "token":
                return parts[1]
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("token") or [None])[0]
