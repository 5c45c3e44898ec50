"""Benchmark of live tracking: the project's real ASGI app against a raw `websockets` server.

Run from the repository root:

    .venv/bin/python bench/tracking.py            # full run: daphne, uvicorn, raw; 3 runs each
    .venv/bin/python bench/tracking.py --check    # 200 watchers, 5 s, loose thresholds (CI)
    .venv/bin/python bench/tracking.py --help     # sizes, rates, servers, runs

What it does, all on 127.0.0.1 and bounded in time:

1. Redis: REDIS_URL if set, else a redis-server of its own on a free port.
2. A database of its own: a copy of a migrated SpatiaLite file (or, when DATABASE_URL names
   PostgreSQL, a temporary database on that server), with a test campus, N orders accepted by N
   riders, and DRF tokens for every customer and rider.
3. For each server in turn (daphne, uvicorn: the project's `campus_errand.asgi:application` with
   the channels-redis pub/sub layer; then a minimal raw `websockets` broadcast server, the
   reference): watchers connect to /ws/orders/<number>/ (the order's customer, `?token=`) and
   riders to /ws/rider/, from client worker processes (asyncio `websockets` clients, compression
   off). Each fix carries its recorded_at timestamp and a sequence number ("seq", passed through
   to watchers), so every delivery is matched to its send time.
4. Cases: the idle connect (time until every watcher has its snapshot, server RSS per watcher),
   then fixed schedules of fixes at the offered delivery rates, then a saturation run (each
   rider keeps --inflight fixes unanswered at most: the server sets the pace). Per case it
   prints watchers, offered/s, delivered/s, loss, p50/p90/p99 latency, server CPU ms per
   delivery (from /proc/<pid>/stat of the server and of our Redis) and the ratio to the raw
   reference.
5. Every process it started is stopped by PID (SIGTERM, then SIGKILL), on errors and Ctrl-C too.
   After each Django server has stopped, the track points it wrote are counted: every accepted
   fix must be in the track (batched history, flushed at exit).

Loss: an offered delivery (an acknowledged fix times the watchers of its order) that no watcher
received by the end of the drain. Figures vary with what else runs on the machine: the load
average is printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Targets (issue 4) for the project's servers; --check uses LOOSE ones.
TARGET = {
    "low_rate": 500,
    "low_p50_ms": 3.0,
    "low_p99_ms": 30.0,
    "high_rate": 2000,
    "high_p99_ms": 100.0,
    "saturation_ratio": 0.25,
    "cpu_ratio": 5.0,
    "idle_kb_per_watcher": 64.0,
    "idle_connect_s": 5.0,
}
LOOSE = {"loss": 0.01, "p50_ms": 100.0, "p99_ms": 1000.0, "connect_s": 20.0, "delivered": 0.9}

# The test campus of tests.factories: fixes stay well inside it.
LNG0, LAT0, DX, DY = 120.080, 30.300, 0.001, 0.0009


# --------------------------------------------------------------------------------------------
# Processes: everything started is remembered and stopped by PID
# --------------------------------------------------------------------------------------------


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, argv: list[str], *, env: dict, log: Path | None = None, **kw):
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=kw.pop("stdout", out),
            stderr=kw.pop("stderr", out),
            start_new_session=True,  # Ctrl-C reaches the bench only: it stops them in order
            **kw,
        )
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            # SIGTERM: daphne and uvicorn shut down gracefully on it (the track is flushed at
            # exit), and unlike SIGINT it is not ignored by children of a background shell.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc, timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


# --------------------------------------------------------------------------------------------
# Redis and the database
# --------------------------------------------------------------------------------------------


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(procs: Processes, tmp: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(tmp), "--loglevel", "warning"]
    proc = procs.start(argv, env=dict(os.environ), log=tmp / "redis.log")
    deadline = time.monotonic() + 10
    while not redis_ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start (see redis.log)")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


def template_hash() -> str:
    """What the template database depends on: the migrations, the factories that seed it and
    this file."""
    digest = hashlib.sha256()
    paths = sorted(ROOT.glob("*/migrations/*.py")) + [ROOT / "tests" / "factories.py"]
    for path in [*paths, Path(__file__).resolve()]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def base_env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="campus_errand.settings",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


class Database:
    """A database for this run: a copy of a migrated and seeded template, kept between runs
    (in VAR_DIR, or as a template database on PostgreSQL) until the migrations, the test
    factories or this file change."""

    def __init__(self, tmp: Path, var_dir: Path) -> None:
        self.tmp, self.var_dir = tmp, var_dir
        self.url = ""
        self._pg_name = ""
        self._pg_admin = ""

    def prepare(self, procs: Processes, orders: int) -> tuple[str, list[dict]]:
        """(database URL, seeded orders)."""
        given = os.environ.get("DATABASE_URL", "")
        key = f"{template_hash()}-{orders}"
        if given.startswith(("postgis://", "postgres://", "postgresql://")):
            return self._prepare_pg(procs, given, key, orders)
        template = self.var_dir / f"bench-template-{key}.sqlite3"
        seed_file = template.with_suffix(".json")
        if not (template.exists() and seed_file.exists()):
            building = self.tmp / "template.sqlite3"
            url = f"spatialite:///{building}"
            self._migrate(procs, url)
            seed = self._seed(url, orders)
            template.parent.mkdir(parents=True, exist_ok=True)
            for old in template.parent.glob("bench-template-*"):
                if not old.name.startswith(f"bench-template-{key.split('-')[0]}"):
                    old.unlink()
            shutil.copyfile(building, template)
            seed_file.write_text(json.dumps(seed))
        db = self.tmp / "bench.sqlite3"
        shutil.copyfile(template, db)
        # Persistent connections, as on PostgreSQL (settings set CONN_MAX_AGE=60 there): opening
        # a SpatiaLite connection loads the extension, tens of milliseconds per socket otherwise.
        self.url = f"spatialite:///{db}?conn_max_age=600"
        return self.url, json.loads(seed_file.read_text())

    def _migrate(self, procs: Processes, url: str) -> None:
        print("  migrating and seeding a template database (kept for the next runs) ...")
        proc = procs.start(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=base_env(DATABASE_URL=url, VAR_DIR=str(self.tmp)),
            log=self.tmp / "migrate.log",
        )
        if proc.wait(300) != 0:
            raise RuntimeError(f"migrate failed: see {self.tmp / 'migrate.log'}")
        procs.stop(proc)

    def _seed(self, url: str, orders: int) -> list[dict]:
        started = time.monotonic()
        out = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--seed", str(orders)],
            env=base_env(DATABASE_URL=url, VAR_DIR=str(self.tmp)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
        seed = json.loads(out.stdout.strip().splitlines()[-1])["orders"]
        print(f"  seeded {len(seed)} orders in {time.monotonic() - started:.1f} s")
        return seed

    def _prepare_pg(self, procs: Processes, given: str, key: str, orders: int):
        import psycopg

        parts = urlsplit(given)
        admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
        template = f"ce_bench_tpl_{key.replace('-', '_')}"
        seed_file = self.var_dir / f"bench-seed-{template}.json"
        self._pg_name = f"ce_bench_{os.getpid()}"
        self._pg_admin = admin

        def url_for(name: str) -> str:
            return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))

        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (template,)
            ).fetchone()
            if not (exists and seed_file.exists()):
                for (old,) in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'ce_bench_tpl_%%'"
                ).fetchall():
                    if not old.startswith(template.rsplit("_", 1)[0]):
                        conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
                conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{template}"')
                try:
                    self._migrate(procs, url_for(template))
                    seed = self._seed(url_for(template), orders)
                except Exception:
                    conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                    raise
                seed_file.parent.mkdir(parents=True, exist_ok=True)
                seed_file.write_text(json.dumps(seed))
            conn.execute(f'CREATE DATABASE "{self._pg_name}" TEMPLATE "{template}"')
        self.url = url_for(self._pg_name)
        return self.url, json.loads(seed_file.read_text())

    def drop(self) -> None:
        if self._pg_name:
            import psycopg

            with psycopg.connect(self._pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
            self._pg_name = ""


# --------------------------------------------------------------------------------------------
# Inside Django (subprocess modes): seed the database, count the track
# --------------------------------------------------------------------------------------------


def _django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campus_errand.settings")
    import django

    django.setup()
    from django.conf import settings

    # Seeding creates a thousand users: PBKDF2 at full cost would take minutes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_main(orders: int) -> None:
    _django()
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from orders import services as order_services
    from tests import factories

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous = OFF")
    with transaction.atomic():
        out = _seed(orders, factories, order_services, Token)
    print(json.dumps({"orders": out}))


def _seed(orders, factories, order_services, Token) -> list[dict]:
    campus = factories.make_campus(slug=f"bench-{os.getpid()}")
    out = []
    for i in range(orders):
        rider = factories.make_rider(
            campus, gender="male" if i % 2 else "female", username=f"bench_rider_{i}"
        )
        customer = factories.make_user(username=f"bench_customer_{i}")
        order = factories.make_order(customer=customer, campus=campus)
        order_services.order_accept(order=order, rider=rider)
        out.append(
            {
                "number": order.number,
                "rider": rider.pk,
                "rider_token": Token.objects.create(user=rider).key,
                "customer_token": Token.objects.create(user=customer).key,
            }
        )
    return out


def count_track_main() -> None:
    _django()
    from tracking.models import TrackPoint

    print(TrackPoint.objects.count())


# --------------------------------------------------------------------------------------------
# The raw reference: a minimal `websockets` broadcast server
# --------------------------------------------------------------------------------------------


async def raw_server_main(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    watchers: dict[str, set] = {}

    async def handler(ws):
        url = urlsplit(ws.request.path)
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["ws", "orders"] and len(parts) == 3:
            group = watchers.setdefault(parts[2], set())
            group.add(ws)
            try:
                await ws.send(json.dumps({"type": "snapshot", "number": parts[2]}))
                await ws.wait_closed()
            finally:
                group.discard(ws)
        elif parts == ["ws", "rider"]:
            query = parse_qs(url.query)
            number, rider = query["order"][0], int(query["rider"][0])
            async for text in ws:
                fix = json.loads(text)
                payload = {
                    "type": "location",
                    "rider": rider,
                    "lat": round(float(fix["lat"]), 7),
                    "lng": round(float(fix["lng"]), 7),
                    "accuracy": fix.get("accuracy"),
                    "recorded_at": fix["recorded_at"],
                    "seq": fix.get("seq"),
                }
                broadcast(watchers.get(number, ()), json.dumps(payload))
                ack = {"type": "ack", "recorded_at": fix["recorded_at"], "seq": fix.get("seq")}
                await ws.send(json.dumps(ack))

    async with serve(handler, "127.0.0.1", port, compression=None, backlog=2048):
        await asyncio.get_running_loop().create_future()


# --------------------------------------------------------------------------------------------
# Client worker (subprocess): watchers and riders of a slice of the orders
# --------------------------------------------------------------------------------------------


@dataclass
class CaseState:
    first_seq: int = 0
    window_end: float = 0.0
    expected: int = 0
    received: int = 0
    in_window: int = 0
    latencies: list = field(default_factory=list)


class Worker:
    def __init__(self, config: dict) -> None:
        self.url = config["url"]
        self.origin = config["origin"]
        self.orders = config["orders"]
        self.per_order = config["watchers_per_order"]
        self.connect_concurrency = config.get("connect_concurrency", 64)
        self.watchers: list = []
        self.watcher_counts = [0] * len(self.orders)
        self.riders: list = []
        self.sent: dict[int, tuple[float, int]] = {}  # seq -> (send time, order index)
        self.seq = config["seq_base"]
        self.case = CaseState()
        self.acks = 0
        self.errors: dict[str, int] = {}
        self.error_sample = ""
        self.tasks: list = []
        self.windows: dict = {}  # rider socket -> semaphore of its unanswered fixes

    async def _connect(self, path: str):
        from websockets.asyncio.client import connect

        return await connect(
            self.url + path,
            origin=self.origin,
            compression=None,
            open_timeout=60,
            ping_interval=None,
            max_queue=None,
        )

    async def connect_all(self) -> dict:
        sem = asyncio.Semaphore(self.connect_concurrency)
        snapshots = 0
        failed = 0
        reasons: dict[str, int] = {}
        started = time.perf_counter()

        async def watcher(i: int) -> None:
            nonlocal snapshots, failed
            order = self.orders[i]
            async with sem:
                try:
                    ws = await self._connect(
                        f"/ws/orders/{order['number']}/?token={order['customer_token']}"
                    )
                    first = json.loads(await asyncio.wait_for(ws.recv(), 60))
                except Exception as exc:
                    failed += 1
                    why = f"{type(exc).__name__}: {exc}"[:120]
                    reasons[why] = reasons.get(why, 0) + 1
                    return
            if first.get("type") == "snapshot":
                snapshots += 1
            self.watchers.append(ws)
            self.watcher_counts[i] += 1
            self.tasks.append(asyncio.create_task(self._read_watcher(ws)))

        async def rider(i: int) -> None:
            nonlocal failed
            order = self.orders[i]
            async with sem:
                try:
                    ws = await self._connect(
                        f"/ws/rider/?token={order['rider_token']}"
                        f"&order={order['number']}&rider={order['rider']}"
                    )
                except Exception as exc:
                    failed += 1
                    why = f"{type(exc).__name__}: {exc}"[:120]
                    reasons[why] = reasons.get(why, 0) + 1
                    return
            self.riders[i] = ws
            self.tasks.append(asyncio.create_task(self._read_rider(ws)))

        await asyncio.gather(
            *(watcher(i) for i in range(len(self.orders)) for _ in range(self.per_order))
        )
        connect_s = time.perf_counter() - started
        self.riders = [None] * len(self.orders)
        await asyncio.gather(*(rider(i) for i in range(len(self.orders))))
        return {
            "event": "connected",
            "watchers": len(self.watchers),
            "snapshots": snapshots,
            "failed": failed,
            "reasons": reasons,
            "connect_s": connect_s,
        }

    async def _read_watcher(self, ws) -> None:
        loads, perf, case_ref = json.loads, time.perf_counter, self
        with contextlib.suppress(Exception):
            async for text in ws:
                now = perf()
                msg = loads(text)
                seq = msg.get("seq")
                if msg.get("type") != "location" or seq is None:
                    continue
                sent = case_ref.sent.get(seq)
                case = case_ref.case
                if sent is None or seq < case.first_seq:
                    continue
                case.received += 1
                if now <= case.window_end:
                    case.in_window += 1
                case.latencies.append((now - sent[0]) * 1000)

    async def _read_rider(self, ws) -> None:
        with contextlib.suppress(Exception):
            async for text in ws:
                msg = json.loads(text)
                kind = msg.get("type")
                if kind == "ack":
                    self.acks += 1
                    seq = msg.get("seq")
                    if seq in self.sent:
                        self.case.expected += self.watcher_counts[self.sent[seq][1]]
                elif kind == "error":
                    code = msg.get("code") or "error"
                    self.errors[code] = self.errors.get(code, 0) + 1
                    self.error_sample = msg.get("message", "")
                else:
                    continue
                window = self.windows.get(ws)
                if window is not None:
                    window.release()

    def _fix_text(self, i: int) -> str:
        from datetime import UTC, datetime

        self.seq += 1
        self.sent[self.seq] = (time.perf_counter(), i)
        return json.dumps(
            {
                "type": "location",
                "lat": LAT0 + random.uniform(-1, 1) * DY,
                "lng": LNG0 + random.uniform(-2, 2) * DX,
                "accuracy": 5.0,
                "recorded_at": datetime.now(UTC).isoformat(),
                "seq": self.seq,
            }
        )

    async def _closed_loop(self, seconds: float, inflight: int) -> int:
        """Saturation: every rider keeps `inflight` fixes unanswered, sending the next as soon
        as one is answered, so the server sets the pace (and its queues stay bounded)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        sent = 0

        async def rider(i: int, ws) -> None:
            nonlocal sent
            window = self.windows[ws] = asyncio.Semaphore(inflight)
            while loop.time() < end:
                try:
                    await asyncio.wait_for(window.acquire(), max(0.01, end - loop.time()))
                    await ws.send(self._fix_text(i))
                except TimeoutError:
                    return
                except Exception:
                    return
                sent += 1

        await asyncio.gather(*(rider(i, ws) for i, ws in enumerate(self.riders) if ws))
        self.windows.clear()
        return sent

    async def warm(self) -> dict:
        """One fix per rider, answered, before anything is measured (the server's first fix per
        rider may read the database; steady state is what the cases measure)."""
        loop = asyncio.get_running_loop()
        self.case = CaseState(first_seq=self.seq + 1)
        started = loop.time()
        answered = 0

        async def one(i: int, ws) -> None:
            nonlocal answered
            window = self.windows[ws] = asyncio.Semaphore(0)
            with contextlib.suppress(Exception):
                await ws.send(self._fix_text(i))
                await asyncio.wait_for(window.acquire(), 30)
                answered += 1

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(self.riders) if ws))
        self.windows.clear()
        await asyncio.sleep(0.5)  # let the warm fixes' deliveries pass
        self.sent.clear()
        return {"event": "warm", "answered": answered, "seconds": loop.time() - started}

    async def run_case(self, rate: float, seconds: float, drain: float, inflight: int = 1) -> dict:
        """Offer `rate` fixes per second for `seconds`, round robin over the riders (rate 0:
        as fast as the server answers, see _closed_loop)."""
        self.case = CaseState(first_seq=self.seq + 1)
        self.acks, self.errors = 0, {}
        live = [i for i, ws in enumerate(self.riders) if ws is not None]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.case.window_end = time.perf_counter() + seconds
        if rate <= 0:
            sent = await self._closed_loop(seconds, inflight)
        else:
            total = int(rate * seconds)
            sent = 0
            while sent < total and live:
                due = min(total, int((loop.time() - t0) * rate) + 1)
                while sent < due:
                    i = live[sent % len(live)]
                    with contextlib.suppress(Exception):
                        await self.riders[i].send(self._fix_text(i))
                    sent += 1
                next_due = t0 + (sent + 1) / rate
                await asyncio.sleep(max(0.0, min(0.002, next_due - loop.time())))
        send_s = loop.time() - t0
        # Drain: until every acknowledged fix has reached its watchers, or time is up.
        deadline = loop.time() + drain
        while loop.time() < deadline:
            if self.acks + sum(self.errors.values()) >= sent and (
                self.case.received >= self.case.expected
            ):
                break
            await asyncio.sleep(0.02)
        case = self.case
        result = {
            "event": "result",
            "fixes": sent,
            "send_s": send_s,
            "acks": self.acks,
            "errors": dict(self.errors),
            "error_sample": self.error_sample,
            "expected": case.expected,
            "received": case.received,
            "in_window": case.in_window,
            "latencies": [round(x, 3) for x in case.latencies],
        }
        self.sent.clear()
        return result

    async def close(self) -> None:
        for ws in [*self.watchers, *self.riders]:
            if ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
        for task in self.tasks:
            task.cancel()


async def worker_main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    worker = Worker(json.loads(await reader.readline()))
    say(await worker.connect_all())
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "warm":
            say(await worker.warm())
        elif cmd["cmd"] == "run":
            say(
                await worker.run_case(
                    cmd["rate"], cmd["seconds"], cmd["drain"], cmd.get("inflight", 1)
                )
            )
        elif cmd["cmd"] == "quit":
            break
    await worker.close()
    say({"event": "closed"})


# --------------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # "daphne" | "uvicorn" | "raw"
    proc: subprocess.Popen
    port: int

    @property
    def django(self) -> bool:
        return self.name != "raw"


UVICORN_ARGS: list[str] = []  # --uvicorn-args


def start_server(procs: Processes, name: str, env: dict, tmp: Path) -> Server:
    port = free_port()
    app = "campus_errand.asgi:application"
    if name == "daphne":
        argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    elif name == "uvicorn":
        argv = [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--lifespan", "off", "--no-access-log", "--log-level", "warning"]
        argv += ["--backlog", "2048", *UVICORN_ARGS, app]
    elif name == "raw":
        argv = [PYTHON, str(Path(__file__).resolve()), "--serve-raw", str(port)]
    else:
        raise ValueError(name)
    proc = procs.start(argv, env=env, log=tmp / f"{name}.log")
    wait_port(port, proc, 30, name)
    return Server(name, proc, port)


class Clients:
    def __init__(
        self, procs: Processes, server: Server, env: dict, orders, per_order, n, concurrency
    ):
        self.procs = procs
        self.workers = []
        slices = [orders[i::n] for i in range(n)]
        for k, part in enumerate(slices):
            proc = procs.start(
                [PYTHON, str(Path(__file__).resolve()), "--client"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
            )
            config = {
                "url": f"ws://127.0.0.1:{server.port}",
                "origin": f"http://127.0.0.1:{server.port}",
                "orders": part,
                "watchers_per_order": per_order,
                "seq_base": k * 10**9,
                "connect_concurrency": concurrency,
            }
            proc.stdin.write((json.dumps(config) + "\n").encode())
            proc.stdin.flush()
            self.workers.append(proc)

    def _read(self, proc, timeout: float) -> dict:
        import select

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError("a client worker stopped answering")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("a client worker exited")
                return json.loads(line)

    def gather(self, timeout: float) -> list[dict]:
        return [self._read(p, timeout) for p in self.workers]

    def send(self, cmd: dict) -> None:
        for p in self.workers:
            p.stdin.write((json.dumps(cmd) + "\n").encode())
            p.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send({"cmd": "quit"})
            self.gather(15)
        for p in self.workers:
            self.procs.stop(p, timeout=5)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


@dataclass
class CaseResult:
    server: str
    case: str
    watchers: int
    offered_per_s: float
    delivered_per_s: float
    loss: float  # fraction of offered deliveries never received
    p50: float
    p90: float
    p99: float
    cpu_ms: float  # server (+ our Redis) CPU per delivery
    errors: dict
    fixes: int
    acks: int
    extra: dict = field(default_factory=dict)


def run_case(
    server: Server,
    clients: Clients,
    cpu_pids,
    *,
    name,
    rate,
    seconds,
    drain,
    per_order,
    watchers,
    inflight=1,
) -> CaseResult:
    fixes_per_s = rate / per_order  # 0: closed loop (saturation)
    cpu0 = [cpu_seconds(p) for p in cpu_pids]
    clients.send(
        {
            "cmd": "run",
            "rate": fixes_per_s / len(clients.workers),
            "seconds": seconds,
            "drain": drain,
            "inflight": inflight,
        }
    )
    results = clients.gather(seconds + drain + 60)
    cpu1 = [cpu_seconds(p) for p in cpu_pids]
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    fixes = sum(r["fixes"] for r in results)
    acks = sum(r["acks"] for r in results)
    expected = sum(r["expected"] for r in results)
    received = sum(r["received"] for r in results)
    in_window = sum(r["in_window"] for r in results)
    send_s = max(r["send_s"] for r in results)
    errors: dict = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    lat = [x for r in results for x in r["latencies"]]
    offered = fixes * per_order
    # Offered deliveries: every fix sent, times its watchers. A refused fix is loss too.
    lost = max(0, offered - received)
    return CaseResult(
        server=server.name,
        case=name,
        watchers=watchers,
        offered_per_s=offered / seconds,
        delivered_per_s=in_window / max(send_s, 1e-9),
        loss=lost / offered if offered else 0.0,
        p50=percentile(lat, 50),
        p90=percentile(lat, 90),
        p99=percentile(lat, 99),
        cpu_ms=sum(used) * 1000 / received if received else float("nan"),
        errors=errors,
        fixes=fixes,
        acks=acks,
        extra={
            "expected": expected,
            "received": received,
            # the server process alone (the rest is our Redis)
            "app_cpu_ms": used[0] * 1000 / received if received else float("nan"),
        },
    )


def bench_server(
    procs, name, *, env, tmp, seed, args, cpu_extra: list[int], counted: list
) -> list[CaseResult]:
    server = start_server(procs, name, env, tmp)
    results: list[CaseResult] = []
    clients = None
    try:
        per_order = args.watchers // len(seed)
        cpu_pids = [server.proc.pid] + (cpu_extra if server.django else [])
        # Memory is measured from a server that has served: a first few sockets load what every
        # process loads once (code paths, caches, database connections, thread pools).
        primer = Clients(procs, server, env, seed[:25], 1, 1, 8)
        primer.gather(60)
        primer.close()
        time.sleep(0.5)
        rss0 = rss_bytes(server.proc.pid)
        clients = Clients(
            procs, server, env, seed, per_order, args.workers, args.connect_concurrency
        )
        connected = clients.gather(120)
        time.sleep(1.0)
        rss1 = rss_bytes(server.proc.pid)
        watchers = sum(c["watchers"] for c in connected)
        snapshots = sum(c["snapshots"] for c in connected)
        connect_s = max(c["connect_s"] for c in connected)
        for c in connected:
            for why, n in c["reasons"].items():
                print(f"    {n} connection(s) failed: {why}")
        results.append(
            CaseResult(
                server=name,
                case="idle connect",
                watchers=watchers,
                offered_per_s=0,
                delivered_per_s=0,
                loss=(args.watchers - snapshots) / args.watchers,
                p50=float("nan"),
                p90=float("nan"),
                p99=float("nan"),
                cpu_ms=float("nan"),
                errors={"failed": sum(c["failed"] for c in connected)}
                if any(c["failed"] for c in connected)
                else {},
                fixes=0,
                acks=0,
                extra={"connect_s": connect_s, "kb_per_watcher": (rss1 - rss0) / 1024 / watchers},
            )
        )
        if args.idle_hold:
            time.sleep(args.idle_hold)  # idle sockets must survive this (Redis socket_timeout)
        clients.send({"cmd": "warm"})
        clients.gather(90)
        for rate in args.rates:
            results.append(
                run_case(
                    server,
                    clients,
                    cpu_pids,
                    name=f"{rate:g}/s",
                    rate=rate,
                    seconds=args.seconds,
                    drain=args.drain,
                    per_order=per_order,
                    watchers=watchers,
                )
            )
        if args.saturation:
            results.append(
                run_case(
                    server,
                    clients,
                    cpu_pids,
                    name="saturation",
                    rate=0,
                    inflight=args.inflight,
                    seconds=args.seconds,
                    drain=args.drain,
                    per_order=per_order,
                    watchers=watchers,
                )
            )
    finally:
        if clients is not None:
            clients.close()
        procs.stop(server.proc, timeout=15)
    if server.django and args.count_track:
        acks = sum(r.acks for r in results)
        out = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--count-track"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        counted.append((name, int(out.stdout.strip() or -1), acks))
    return results


def median_results(runs: list[list[CaseResult]]) -> list[CaseResult]:
    """Per case, the median of each figure over the runs."""
    merged = []
    for cases in zip(*runs, strict=True):
        first = cases[0]

        def med(attr, cases=cases):
            values = [getattr(c, attr) for c in cases]
            values = [v for v in values if v == v]  # drop NaN
            return statistics.median(values) if values else float("nan")

        extra = {}
        for key in first.extra:
            values = [c.extra[key] for c in cases]
            extra[key] = statistics.median(values)
        errors: dict = {}
        for c in cases:
            for k, v in c.errors.items():
                errors[k] = errors.get(k, 0) + v
        merged.append(
            CaseResult(
                server=first.server,
                case=first.case,
                watchers=int(statistics.median([c.watchers for c in cases])),
                offered_per_s=med("offered_per_s"),
                delivered_per_s=med("delivered_per_s"),
                loss=med("loss"),
                p50=med("p50"),
                p90=med("p90"),
                p99=med("p99"),
                cpu_ms=med("cpu_ms"),
                errors=errors,
                fixes=sum(c.fixes for c in cases),
                acks=sum(c.acks for c in cases),
                extra=extra,
            )
        )
    return merged


def fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value != value else format(value, spec)


def print_table(results: list[CaseResult], reference: dict[str, CaseResult]) -> None:
    head = (
        f"{'server':8} {'case':12} {'watchers':>8} {'offered/s':>9} {'delivered/s':>11} "
        f"{'loss':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'CPU ms/delivery':>18} "
        f"{'vs raw':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        ref = reference.get(r.case)
        if r.case == "idle connect":
            detail = (
                f"connected in {r.extra['connect_s']:.2f} s, "
                f"{r.extra['kb_per_watcher']:.1f} KB/watcher"
            )
            loss = f"{r.loss:.1%}" if r.loss else "0"
            print(f"{r.server:8} {r.case:12} {r.watchers:>8} {'':>9} {'':>11} {loss:>7}  {detail}")
            continue
        vs = ""
        if ref is not None and r.server != "raw":
            parts = []
            if r.case == "saturation" and ref.delivered_per_s:
                parts.append(f"{r.delivered_per_s / ref.delivered_per_s:.0%} thr")
            if ref.cpu_ms == ref.cpu_ms and ref.cpu_ms > 0 and r.cpu_ms == r.cpu_ms:
                parts.append(f"{r.cpu_ms / ref.cpu_ms:.1f}x CPU")
            vs = ", ".join(parts)
        loss = f"{r.loss:.2%}" if r.loss else "0"
        cpu = fmt(r.cpu_ms, ".3f")
        if r.server != "raw" and "app_cpu_ms" in r.extra:
            cpu += f" (app {fmt(r.extra['app_cpu_ms'], '.3f')})"
        print(
            f"{r.server:8} {r.case:12} {r.watchers:>8} {r.offered_per_s:>9.0f} "
            f"{r.delivered_per_s:>11.0f} {loss:>7} {fmt(r.p50):>7} {fmt(r.p90):>7} "
            f"{fmt(r.p99):>7} {cpu:>18} {vs:>14}" + (f"  errors {r.errors}" if r.errors else "")
        )


def evaluate(results: list[CaseResult], reference: dict, args) -> list[tuple[str, bool, str]]:
    """(what, met, figure) for each target, per Django server."""
    verdicts = []
    by = {(r.server, r.case): r for r in results}
    for server in [s for s in args.servers if s != "raw"]:
        idle = by.get((server, "idle connect"))
        if args.check:
            for r in results:
                if r.server != server or r.case in ("idle connect", "saturation"):
                    continue
                verdicts.append(
                    (
                        f"{server} {r.case}: loss <= {LOOSE['loss']:.0%}",
                        r.loss <= LOOSE["loss"],
                        f"{r.loss:.2%}",
                    )
                )
                verdicts.append(
                    (
                        f"{server} {r.case}: p50 <= {LOOSE['p50_ms']:g} ms",
                        r.p50 <= LOOSE["p50_ms"],
                        fmt(r.p50),
                    )
                )
                verdicts.append(
                    (
                        f"{server} {r.case}: p99 <= {LOOSE['p99_ms']:g} ms",
                        r.p99 <= LOOSE["p99_ms"],
                        fmt(r.p99),
                    )
                )
                verdicts.append(
                    (
                        f"{server} {r.case}: delivered >= {LOOSE['delivered']:.0%} of offered",
                        r.delivered_per_s >= LOOSE["delivered"] * r.offered_per_s,
                        f"{r.delivered_per_s:.0f}/{r.offered_per_s:.0f}",
                    )
                )
                verdicts.append((f"{server} {r.case}: no refused fix", not r.errors, str(r.errors)))
            if idle:
                verdicts.append(
                    (
                        f"{server}: every watcher connected within {LOOSE['connect_s']:g} s",
                        idle.loss == 0 and idle.extra["connect_s"] <= LOOSE["connect_s"],
                        f"{idle.extra['connect_s']:.2f} s",
                    )
                )
            continue
        low = by.get((server, f"{TARGET['low_rate']:g}/s"))
        high = by.get((server, f"{TARGET['high_rate']:g}/s"))
        sat = by.get((server, "saturation"))
        if low:
            verdicts.append((f"{server} 500/s: no loss", low.loss == 0, f"{low.loss:.3%}"))
            verdicts.append((f"{server} 500/s: p50 <= 3 ms", low.p50 <= 3, fmt(low.p50, ".2f")))
            verdicts.append((f"{server} 500/s: p99 <= 30 ms", low.p99 <= 30, fmt(low.p99)))
        if high:
            verdicts.append((f"{server} 2000/s: no loss", high.loss == 0, f"{high.loss:.3%}"))
            verdicts.append((f"{server} 2000/s: p99 <= 100 ms", high.p99 <= 100, fmt(high.p99)))
        ref = reference.get("saturation")
        if sat and ref:
            ratio = sat.delivered_per_s / ref.delivered_per_s
            verdicts.append(
                (
                    f"{server} saturation >= 25% of raw",
                    ratio >= 0.25,
                    f"{ratio:.0%} ({sat.delivered_per_s:.0f} vs {ref.delivered_per_s:.0f}/s)",
                )
            )
            cpu = sat.cpu_ms / ref.cpu_ms
            verdicts.append((f"{server} CPU/delivery <= 5x raw", cpu <= 5, f"{cpu:.1f}x"))
        if idle:
            kb = idle.extra["kb_per_watcher"]
            verdicts.append((f"{server} idle: <= 64 KB per watcher", kb <= 64, f"{kb:.1f} KB"))
            verdicts.append(
                (
                    f"{server} idle: all connected within 5 s",
                    idle.loss == 0 and idle.extra["connect_s"] <= 5,
                    f"{idle.extra['connect_s']:.2f} s",
                )
            )
    return verdicts


def orchestrate(args) -> int:
    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    database = Database(tmp, var_dir)
    started = time.monotonic()

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        print(f"bench/tracking.py: {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}")
        redis_url = os.environ.get("REDIS_URL", "")
        cpu_extra: list[int] = []
        if redis_url:
            print(f"  Redis: {redis_url} (REDIS_URL; its CPU is not counted)")
        else:
            redis_url, redis_proc = start_redis(procs, tmp)
            cpu_extra.append(redis_proc.pid)
            print(f"  Redis: {redis_url} (our own, pid {redis_proc.pid})")
        db_url, seed = database.prepare(procs, args.orders)
        print(f"  database: {db_url} ({len(seed)} orders)")
        env = base_env(DATABASE_URL=db_url, REDIS_URL=redis_url, VAR_DIR=str(tmp))
        counted: list = []
        all_runs: dict[str, list[list[CaseResult]]] = {}
        for run in range(args.runs):
            for name in args.servers:
                if time.monotonic() - started > args.max_seconds:
                    raise RuntimeError(f"time limit of {args.max_seconds:.0f} s reached")
                print(f"  run {run + 1}/{args.runs}: {name} ...", flush=True)
                results = bench_server(
                    procs,
                    name,
                    env=env,
                    tmp=tmp,
                    seed=seed,
                    args=args,
                    cpu_extra=cpu_extra,
                    counted=counted,
                )
                all_runs.setdefault(name, []).append(results)
        results = [r for name in args.servers for r in median_results(all_runs[name])]
        reference = {r.case: r for r in results if r.server == "raw"}
        print()
        runs = f"median of {args.runs} runs" if args.runs > 1 else "1 run"
        print(
            f"Results ({runs}; {args.watchers} watchers on {args.orders} orders, "
            f"{args.seconds:g} s per case; load {os.getloadavg()[0]:.2f}):"
        )
        print_table(results, reference)
        verdicts = evaluate(results, reference, args)
        # One database for every server: the track holds the fixes of all the runs so far.
        acked = 0
        for name, points, acks in counted:
            acked += acks
            verdicts.append(
                (
                    f"{name}: every acknowledged fix is in the track after shutdown",
                    points >= acked,
                    f"{points} points, {acked} fixes acknowledged so far",
                )
            )
        print()
        print("Targets:" if not args.check else "Check (loose thresholds):")
        for what, met, figure in verdicts:
            print(f"  [{'met' if met else 'MISSED'}] {what}: {figure}")
        print(f"bench/tracking.py took {time.monotonic() - started:.0f} s")
        if args.json:
            Path(args.json).write_text(
                json.dumps([r.__dict__ for r in results], indent=1, default=str)
            )
        return 0 if (not args.check or all(met for _, met, _ in verdicts)) else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            database.drop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="CI mode: small, loose thresholds")
    p.add_argument("--servers", default="daphne,uvicorn,raw")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--watchers", type=int, default=None)
    p.add_argument("--orders", type=int, default=None)
    p.add_argument("--rates", default=None, help="offered deliveries/s, comma separated")
    p.add_argument(
        "--saturation",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the saturation case: every rider sends its next fix once the last is answered",
    )
    p.add_argument("--inflight", type=int, default=4, help="saturation: unanswered fixes per rider")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--drain", type=float, default=None, help="seconds to wait for stragglers")
    p.add_argument("--idle-hold", type=float, default=None, help="seconds idle before the rates")
    p.add_argument("--workers", type=int, default=2, help="client processes")
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=None,
        help="sockets each client process opens at a time (default 64, --check 16)",
    )
    p.add_argument("--max-seconds", type=float, default=1800)
    p.add_argument("--uvicorn-args", default="", help='more uvicorn options, e.g. "--ws wsproto"')
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument("--no-count-track", dest="count_track", action="store_false")
    # Internal modes (the bench runs itself in subprocesses).
    p.add_argument("--serve-raw", type=int, help=argparse.SUPPRESS)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    p.add_argument(
        "--count-track", dest="count_track_mode", action="store_true", help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    UVICORN_ARGS[:] = args.uvicorn_args.split()
    check = args.check
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.runs = args.runs or (1 if check else 3)
    args.watchers = args.watchers or (200 if check else 1000)
    args.orders = args.orders or max(1, args.watchers // 2)
    args.seconds = args.seconds or (4.0 if check else 10.0)
    args.drain = args.drain if args.drain is not None else (2.0 if check else 3.0)
    args.connect_concurrency = args.connect_concurrency or (16 if check else 64)
    args.rates = [
        float(x) for x in (args.rates or ("500" if check else "500,2000")).split(",") if x
    ]
    if args.saturation is None:
        args.saturation = not check
    if args.idle_hold is None:
        args.idle_hold = 0 if check else 12
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve_raw:
        asyncio.run(raw_server_main(args.serve_raw))
        return 0
    if args.client:
        asyncio.run(worker_main())
        return 0
    if args.seed:
        seed_main(args.seed)
        return 0
    if args.count_track_mode:
        count_track_main()
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
