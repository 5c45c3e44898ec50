"""Benchmark of ordering: quote -> place -> pay through the real ASGI app, on PostgreSQL.

Run from the repository root:

    .venv/bin/python bench/ordering.py            # full run (about 50 s)
    .venv/bin/python bench/ordering.py --quick    # smoke run (a few seconds per phase)
    .venv/bin/python bench/ordering.py --help     # clients, durations, rate, workers

What it does, all on 127.0.0.1 and bounded in time:

1. The database: DATABASE_URL (default postgis://postgres@127.0.0.1:5432/campus_errand_bench),
   created with the postgis extension if missing, then migrated. Redis: REDIS_URL if set, else a
   redis-server of its own on a free port (bench/tracking.py's helper).
2. Seeding (a Django subprocess): a campus of the test factories, one customer per client with
   a DRF token and a wallet grant large enough for every order of the run.
3. The server: uvicorn (or daphne, --server) serving `campus_errand.asgi:application` on a free
   loopback port, --workers processes (default 2, the target machine's cores).
4. Phases, each from one asyncio client process (keep-alive HTTP/1.1, one connection a client):
   - baseline: --clients clients loop GET /api/wallet/ (an authenticated DRF read) -> req/s;
   - orders: --clients clients loop the full order path: POST /api/orders/quote/, POST
     /api/orders/ with the quote_id, then POST /api/orders/<number>/pay/ with an
     Idempotency-Key if the order is still pending (order_create pays from the wallet at once
     when the balance covers it, which it always does here: the hold and the move to "open"
     happen inside the create request) -> orders/s and the whole path's latency (p50/p99);
   - paced: orders started at a fixed --rate (default 50/s) whatever the replies -> p50/p99.
5. The ledger is checked afterwards: all entries sum to 0 and every transaction sums to 0; every
   order placed by the run is open and paid (one order-payment transaction each).
6. Every process it started is stopped by PID (SIGTERM, then SIGKILL), on errors and Ctrl-C too.

Targets (issue 3, on 2 cores): orders/s >= 35% of the baseline's req/s; p99 <= 150 ms at 50
orders/s. Figures vary with what else runs on the machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.tracking import (  # noqa: E402  (the shared process helpers)
    PYTHON,
    Processes,
    base_env,
    free_port,
    start_redis,
    wait_port,
)

DEFAULT_DB = "postgis://postgres@127.0.0.1:5432/campus_errand_bench"
TARGET = {"ratio": 0.35, "paced_p99_ms": 150.0}
GRANT_FEN = 10_000_000  # ¥100,000 a customer: never short of money during a run


# --------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------


def prepare_db(procs: Processes, url: str, tmp: Path) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            print(f"  creating database {name}", flush=True)
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    proc = procs.start(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        env=base_env(DATABASE_URL=url, VAR_DIR=str(tmp)),
        log=tmp / "migrate.log",
    )
    if proc.wait(300) != 0:
        raise RuntimeError(f"migrate failed: see {tmp / 'migrate.log'}")
    procs.stop(proc)
    # Earlier runs' rows and dead tuples otherwise get vacuumed and checkpointed in the middle of
    # this run's phases, whichever that happens to hit: settle them first, for comparable runs.
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def pg_dsn(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


def ledger_check(url: str, numbers: list[str]) -> dict:
    """All entries sum to 0, each transaction sums to 0, each placed order is open and paid."""
    import psycopg

    with psycopg.connect(pg_dsn(url)) as conn:
        total = conn.execute("SELECT COALESCE(SUM(amount_fen), 0) FROM payments_entry").fetchone()
        unbalanced = conn.execute(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM payments_entry "
            "GROUP BY transaction_id HAVING SUM(amount_fen) <> 0) t"
        ).fetchone()
        transactions = conn.execute("SELECT COUNT(*) FROM payments_ledgertransaction").fetchone()
        rows = conn.execute(
            "SELECT o.status, COUNT(DISTINCT o.id), COUNT(t.id) FROM orders_order o "
            "LEFT JOIN payments_ledgertransaction t "
            "ON t.order_id = o.id AND t.kind = 'order_payment' "
            "WHERE o.number = ANY(%s) GROUP BY o.status",
            (numbers,),
        ).fetchall()
    by_status = {status: (n, paid) for status, n, paid in rows}
    open_n, paid_n = by_status.get("open", (0, 0))
    return {
        "sum_fen": int(total[0]),
        "unbalanced": int(unbalanced[0]),
        "transactions": int(transactions[0]),
        "placed": len(numbers),
        "open": open_n,
        "payments": paid_n,
        "by_status": {k: v[0] for k, v in by_status.items()},
    }


# --------------------------------------------------------------------------------------------
# Inside Django (subprocess mode): seed customers and the campus
# --------------------------------------------------------------------------------------------


def seed_main(customers: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campus_errand.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from payments import services as payments
    from tests import factories

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tag = f"{os.getpid()}-{int(time.time())}"
    with transaction.atomic():
        campus = factories.make_campus(slug=f"bench-order-{tag}")
        tokens = []
        for i in range(customers):
            user = factories.make_user(username=f"bench_order_{tag}_{i}")
            payments.wallet_grant(user=user, amount_fen=GRANT_FEN, reference=f"bench-{tag}-{i}")
            tokens.append(Token.objects.create(user=user).key)
    places = {code: factories.building(campus, code).pk for code in ("P1", "D1", "D2", "D3", "C1")}
    print(json.dumps({"tokens": tokens, "places": places}))


# --------------------------------------------------------------------------------------------
# The client: keep-alive HTTP/1.1 on asyncio streams (no HTTP library in the venv is needed)
# --------------------------------------------------------------------------------------------


class Http:
    # Servers close keep-alive connections idle this long (uvicorn: 5 s); like any HTTP client,
    # do not send on one that may be closing under us: open a fresh one.
    IDLE_REUSE_SECONDS = 4.0

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used_at = 0.0

    async def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        now = time.monotonic()
        if self.writer is not None and now - self.used_at > self.IDLE_REUSE_SECONDS:
            await self.close()
        self.used_at = now
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else b""
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            f"Authorization: Token {self.token}",
            "Accept: application/json",
            "Accept-Language: en",
            f"Content-Length: {len(data)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            payload = b"".join(parts)
        elif length is not None:
            payload = await self.reader.readexactly(length)
        else:
            payload = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    done: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    first_error: str = ""
    skipped: int = 0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def order_payload(places: dict, i: int) -> dict:
    dropoff = places[("D1", "D2", "D3")[i % 3]]
    return {
        "kind": "document",
        "pickup_building": places["P1"],
        "dropoff_building": dropoff,
        "description": f"bench envelope {i}",
        "details": {},
    }


async def place_order(http: Http, places: dict, i: int) -> str:
    payload = order_payload(places, i)
    status, body = await http.request("POST", "/api/orders/quote/", payload)
    if status != 200:
        raise RuntimeError(f"quote {status}: {body[:300]!r}")
    quote = json.loads(body)
    status, body = await http.request(
        "POST", "/api/orders/", {**payload, "quote_id": quote["quote_id"]}
    )
    if status != 201:
        raise RuntimeError(f"create {status}: {body[:300]!r}")
    order = json.loads(body)
    number = order["number"]
    if order["status"] != "pending":  # create pays from the wallet at once when it covers it
        return number
    status, body = await http.request(
        "POST",
        f"/api/orders/{number}/pay/",
        {"amount_fen": quote["total_fen"]},
        {"Idempotency-Key": uuid.uuid4().hex},
    )
    if status != 200:
        raise RuntimeError(f"pay {status}: {body[:300]!r}")
    return number


async def wallet_get(http: Http, places: dict, i: int) -> str:
    status, body = await http.request("GET", "/api/wallet/")
    if status != 200:
        raise RuntimeError(f"wallet {status}: {body[:300]!r}")
    return ""


async def closed_loop(port, tokens, places, op, seconds: float, name: str) -> Phase:
    """Every client loops `op` back to back for `seconds`."""
    phase = Phase(name)
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client(token: str) -> None:
        http = Http(port, token)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    number = await op(http, places, next(counter))
                except Exception as exc:  # noqa: BLE001  (counted and shown)
                    phase.errors += 1
                    phase.first_error = phase.first_error or str(exc)
                    await http.close()
                    continue
                phase.latencies.append(time.perf_counter() - start)
                phase.done += 1
                if number:
                    phase.numbers.append(number)
        finally:
            await http.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(t) for t in tokens))
    phase.seconds = time.perf_counter() - began
    return phase


async def paced(port, tokens, places, rate: float, seconds: float) -> Phase:
    """Orders started every 1/rate s (open loop); each on a free client's connection."""
    phase = Phase(f"paced {rate:g}/s")
    idle = [Http(port, t) for t in tokens]
    pending: set[asyncio.Task] = set()
    late = 0

    async def one(http: Http, i: int, start: float) -> None:
        try:
            number = await place_order(http, places, i)
            phase.latencies.append(time.perf_counter() - start)  # from the scheduled start
            phase.done += 1
            phase.numbers.append(number)
        except Exception as exc:  # noqa: BLE001
            phase.errors += 1
            phase.first_error = phase.first_error or str(exc)
            await http.close()
        finally:
            idle.append(http)

    began = time.perf_counter()
    total = int(rate * seconds)
    stop = began + seconds * 1.5
    for i in range(total):
        at = began + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        while not idle and time.perf_counter() < stop:  # all busy: the server is behind
            late += 1
            await asyncio.sleep(0.001)
        if not idle:
            phase.skipped = total - i  # never started: the schedule ran out of time
            break
        task = asyncio.create_task(one(idle.pop(), 10**6 + i, at))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=max(1.0, stop + 5 - time.perf_counter()))
    phase.seconds = time.perf_counter() - began
    for http in idle:
        await http.close()
    if late:
        phase.first_error = phase.first_error or (
            f"all {len(tokens)} connections busy for {late} ms; {phase.skipped} orders of the "
            "schedule never started"
        )
    return phase


async def run_phases(args, port: int, tokens: list[str], places: dict) -> list[Phase]:
    clients = tokens[: args.clients]
    # Warm-up: every worker imports, connects to the database, fills its caches.
    await closed_loop(port, clients, places, place_order, 1.0 if args.quick else 2.0, "warm-up")
    await closed_loop(port, clients, places, wallet_get, 1.0, "warm-up")
    baseline = await closed_loop(
        port, clients, places, wallet_get, args.seconds, "GET /api/wallet/"
    )
    orders = await closed_loop(
        port, clients, places, place_order, args.seconds, "order (quote+create+pay)"
    )
    rate_phase = await paced(port, tokens, places, args.rate, args.seconds)
    return [baseline, orders, rate_phase]


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def start_server(procs: Processes, args, env: dict, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    app = "campus_errand.asgi:application"
    if args.server == "uvicorn":
        argv = [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--lifespan", "off", "--no-access-log", "--log-level", "warning"]
        argv += ["--workers", str(args.workers), "--backlog", "2048", app]
    else:
        argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    proc = procs.start(argv, env=env, log=tmp / f"{args.server}.log")
    wait_port(port, proc, 30, args.server)
    return proc, port


def print_table(phases: list[Phase], ratio: float, args) -> None:
    print()
    print(f"{'phase':<28}{'done':>7}{'errors':>8}{'rate/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for p in phases:
        print(
            f"{p.name:<28}{p.done:>7}{p.errors:>8}{p.rate:>9.1f}{p.pct(50):>9.1f}{p.pct(99):>9.1f}"
        )
    print(f"\norders/s ÷ baseline req/s = {ratio:.2f} (target ≥ {TARGET['ratio']:.2f})")
    for p in phases:
        if p.first_error:
            print(f"  {p.name}: first problem: {p.first_error}")


def orchestrate(args) -> int:
    url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    if not url.startswith(("postgis://", "postgres://", "postgresql://")):
        print("bench/ordering.py runs on PostgreSQL: set DATABASE_URL=postgis://...")
        return 2
    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="ce-bench-order-"))
    began = time.monotonic()
    try:
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            redis_url, _ = start_redis(procs, tmp)
        print(f"database {urlsplit(url).path.lstrip('/')}, redis {redis_url}", flush=True)
        prepare_db(procs, url, tmp)
        # Connections: the settings' psycopg pool per server process (--pool-size, 0: a new
        # connection per request, as with no pool).
        server_url = url
        env = base_env(
            DATABASE_URL=server_url,
            REDIS_URL=redis_url,
            VAR_DIR=str(tmp),
            DB_POOL_MAX_SIZE=str(args.pool_size),
        )
        needed = max(args.clients, 64)  # the paced phase may hold more orders in flight
        seed = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--seed", str(needed)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if seed.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{seed.stderr[-2000:]}")
        seeded = json.loads(seed.stdout.strip().splitlines()[-1])
        server, port = start_server(procs, args, env, tmp)
        print(
            f"{args.server} pid {server.pid} on 127.0.0.1:{port}, {args.workers} worker(s); "
            f"{args.clients} clients, {args.seconds:g} s a phase",
            flush=True,
        )
        load_before = os.getloadavg()
        phases = asyncio.run(run_phases(args, port, seeded["tokens"], seeded["places"]))
        load_after = os.getloadavg()
        procs.stop(server)
        baseline, orders, rate_phase = phases
        ratio = orders.rate / baseline.rate if baseline.rate else 0.0
        print_table(phases, ratio, args)
        numbers = orders.numbers + rate_phase.numbers
        ledger = ledger_check(url, numbers)
        balanced = ledger["sum_fen"] == 0 and ledger["unbalanced"] == 0
        paid = ledger["open"] == ledger["placed"] == ledger["payments"]
        print(
            f"\nledger: {ledger['transactions']} transactions, sum of entries {ledger['sum_fen']} "
            f"fen, {ledger['unbalanced']} unbalanced -> "
            f"{'balanced' if balanced else 'NOT BALANCED'}"
        )
        print(
            f"orders of this run: {ledger['placed']} placed, {ledger['open']} open, "
            f"{ledger['payments']} payments {ledger['by_status']}"
        )
        cpus = os.cpu_count()
        print(
            f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
            f"({cpus} CPUs); wall {time.monotonic() - began:.1f} s"
        )
        checks = [
            ("ledger balanced", balanced),
            ("every placed order paid and open", paid),
            ("no errors", not (baseline.errors or orders.errors or rate_phase.errors)),
            (f"the {args.rate:g}/s schedule kept", not rate_phase.skipped),
            (f"orders/s ≥ {TARGET['ratio']:.0%} of baseline req/s", ratio >= TARGET["ratio"]),
            (
                f"p99 ≤ {TARGET['paced_p99_ms']:g} ms at {args.rate:g} orders/s",
                rate_phase.pct(99) <= TARGET["paced_p99_ms"],
            ),
        ]
        print()
        for label, met in checks:
            print(f"  {'ok  ' if met else 'MISS'} {label}")
        hard = all(met for _, met in checks[:3])
        return 0 if (hard and (args.quick or all(met for _, met in checks))) else 1
    finally:
        procs.stop_all()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s phases, 8 clients")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds a phase (8)")
    parser.add_argument("--rate", type=float, default=50.0, help="paced orders/s (50)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (2)")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument(
        "--pool-size",
        type=int,
        default=10,
        help="the server's DB_POOL_MAX_SIZE per process (10; 0: a connection per request)",
    )
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.clients = min(args.clients, 8)
        args.seconds = min(args.seconds, 3.0)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.seed is not None:
        seed_main(args.seed)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
