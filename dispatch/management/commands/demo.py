"""Serve the platform with daphne and run the simulated riders beside it (`make demo`)."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from campus.selectors import campus_default
from dispatch.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, SIM_RIDERS
from dispatch.runner import Dispatcher
from dispatch.simulator import RiderSimulator


class Command(BaseCommand):
    help = "Run the demo: daphne on 127.0.0.1:8000 plus simulated riders using the HTTP API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-sim", action="store_true", help="serve without simulated riders")
        parser.add_argument("--seconds", type=float, default=None, help="stop after this long")

    def handle(self, *args, host, port, no_sim, seconds, **options):
        campus = campus_default()
        if campus is None:
            raise CommandError("no campus yet: run `manage.py load_campus` and `seed_demo` first")
        base_url = f"http://{host}:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "--access-log",
                str(settings.VAR_DIR / "access.log"),
                "campus_errand.asgi:application",
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # The dispatcher runs inside the demo process (production runs `run_dispatcher`).
        dispatcher = Dispatcher(
            owner="demo",
            log=lambda line: self.stdout.write(line),
            manage_connections=True,
            log_idle=False,
        )
        dispatching = threading.Thread(target=dispatcher.run, name="dispatcher", daemon=True)
        stop_housekeeping = threading.Event()
        housekeeping = threading.Thread(
            target=self._housekeeping, args=(stop_housekeeping,), name="housekeeping", daemon=True
        )
        try:
            self._wait_until_up(base_url, server)
            dispatching.start()
            housekeeping.start()
            self._banner(base_url)
            if no_sim:
                server.wait(timeout=seconds)
                return
            simulator = RiderSimulator(
                base_url=base_url,
                campus=campus,
                usernames=SIM_RIDERS,
                password=DEMO_PASSWORD,
                log=lambda line: self.stdout.write(line),
            )
            simulator.run(seconds=seconds)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            pass
        finally:
            stop_housekeeping.set()
            dispatcher.stop.set()
            if dispatching.is_alive():
                dispatching.join(timeout=10)
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    def _housekeeping(self, stop: threading.Event) -> None:
        """What cron runs in production (README, "Scheduled jobs"), every half minute."""
        jobs = [
            ("open_scheduled_orders", []),
            ("expire_open_orders", []),
            ("complete_delivered", ["--after-hours", "2"]),
            ("takeout_deadlines", []),
        ]
        while not stop.wait(30):
            for name, args in jobs:
                try:
                    call_command(name, *args, stdout=io.StringIO())
                except Exception as exc:  # noqa: BLE001 — the demo keeps serving whatever a job does
                    self.stderr.write(f"{name}: {exc}")
                finally:
                    close_old_connections()

    def _wait_until_up(self, base_url: str, server: subprocess.Popen) -> None:
        for _ in range(100):
            if server.poll() is not None:
                raise CommandError("daphne exited: is port already in use?")
            try:
                urllib.request.urlopen(base_url + "/api/campus/buildings/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise CommandError("daphne did not answer within 20 s")

    def _banner(self, base_url: str) -> None:
        w = self.stdout.write
        w(self.style.SUCCESS(f"\nCampus Errand is running at {base_url}/"))
        w(f"  admin: {base_url}/admin/   API docs: {base_url}/api/docs/")
        w(f"  demo logins (password {DEMO_PASSWORD}):")
        for account in DEMO_ACCOUNTS:
            if account.role != "sim":
                w(f"    {account.role:9} {account.username}")
        w("  simulated riders: " + ", ".join(SIM_RIDERS) + " (they accept orders after 5 s)")
        w("Press Ctrl-C to stop.\n")
