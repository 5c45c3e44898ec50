"""Simulated riders for the demo: they use the public HTTP API exactly as a rider's phone does.

Each bot logs in for a token, goes online, takes an open order from its board (after a short
grace so that a human rider can grab it first), walks the campus paths to the pickup and on to the
drop-off while posting GPS fixes, and taps through picked up -> delivering -> delivered.
"""

import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from campus.geo import interpolate
from campus.graph import campus_graph
from campus.models import Campus


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body
        super().__init__(f"{status}: {body}")


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, payload: dict | None = None) -> dict | list:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept-Language", "en")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, json.loads(exc.read() or b"{}")) from None

    def login(self, username: str, password: str) -> None:
        self.token = self.call(
            "POST", "/api/auth/token/", {"username": username, "password": password}
        )["token"]


@dataclass
class Bot:
    username: str
    api: ApiClient
    position: tuple[float, float]  # lng, lat
    order: dict | None = None
    path: list[tuple[float, float]] = field(default_factory=list)
    walked_m: float = 0.0
    length_m: float = 0.0
    leg: str = ""  # "to_pickup" | "to_dropoff"


class RiderSimulator:
    def __init__(
        self,
        *,
        base_url: str,
        campus: Campus,
        usernames: list[str],
        password: str,
        speed_mps: float = 6.0,
        grace_s: float = 5.0,
        tick_s: float = 1.0,
        log=print,
    ):
        self.campus = campus
        self.graph = campus_graph(campus)
        self.speed, self.grace, self.tick, self.log = speed_mps, grace_s, tick_s, log
        entrances = [tuple(node) for node in self.graph.nodes]
        self.bots = []
        for name in usernames:
            api = ApiClient(base_url)
            api.login(name, password)
            api.call("POST", "/api/rider/online/", {"online": True})
            self.bots.append(Bot(name, api, random.choice(entrances)))

    def run(self, *, seconds: float | None = None) -> None:
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            started = time.monotonic()
            for bot in self.bots:
                try:
                    self.step(bot)
                except (ApiError, urllib.error.URLError, OSError) as exc:
                    self.log(f"[{bot.username}] {exc}")
            time.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    def step(self, bot: Bot) -> None:
        if bot.order is None:
            self.try_accept(bot)
            return
        bot.walked_m = min(bot.length_m, bot.walked_m + self.speed * self.tick)
        bot.position = interpolate(bot.path, bot.walked_m)
        self.post_location(bot)
        if bot.walked_m < bot.length_m:
            return
        number = bot.order["number"]
        if bot.leg == "to_pickup":
            self.transition(bot, "picked_up")
            self.transition(bot, "delivering")
            self.head_to(bot, bot.order["dropoff"], "to_dropoff")
        else:
            self.transition(bot, "delivered")
            self.log(f"[{bot.username}] delivered {number}")
            bot.order = None

    def try_accept(self, bot: Bot) -> None:
        # Auto / hybrid dispatch: an offer made to this bot comes first, answered at once.
        for offer in bot.api.call("GET", "/api/dispatch/offers/"):
            try:
                bot.api.call("POST", f"/api/dispatch/offers/{offer['id']}/accept/")
            except ApiError as exc:
                if exc.status in (403, 404, 409):
                    continue
                raise
            self.log(f"[{bot.username}] accepted offer for {offer['number']}")
            bot.order = offer
            self.head_to(bot, offer["pickup"], "to_pickup")
            self.post_location(bot)
            return
        board = bot.api.call("GET", "/api/rider/board/")
        now = datetime.now(UTC)
        for order in board:
            age = (now - datetime.fromisoformat(order["created_at"])).total_seconds()
            if age < self.grace:
                continue
            try:
                bot.api.call("POST", f"/api/orders/{order['number']}/accept/")
            except ApiError as exc:
                if exc.status in (403, 409):
                    continue
                raise
            self.log(f"[{bot.username}] accepted {order['number']}")
            bot.order = order
            self.head_to(bot, order["pickup"], "to_pickup")
            self.post_location(bot)
            return

    def head_to(self, bot: Bot, place: dict, leg: str) -> None:
        route = self.graph.route(bot.position, (place["lng"], place["lat"]))
        bot.path, bot.length_m, bot.walked_m, bot.leg = route.coords, route.distance_m, 0.0, leg

    def post_location(self, bot: Bot) -> None:
        lng, lat = bot.position
        bot.api.call(
            "POST",
            "/api/rider/location/",
            {
                "lat": lat,
                "lng": lng,
                "accuracy": 5,
                "recorded_at": datetime.now(UTC).isoformat(),
            },
        )

    def transition(self, bot: Bot, to: str) -> None:
        bot.api.call("POST", f"/api/orders/{bot.order['number']}/transition/", {"to": to})
