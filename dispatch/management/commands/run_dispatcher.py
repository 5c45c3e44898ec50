"""`manage.py run_dispatcher [--campus slug] [--once]`: the dispatcher process.

Run one per machine (or several, for availability): a database lease lets exactly one of them
dispatch each campus; the others stand by. Ctrl-C / SIGTERM finishes the running cycle, gives
the leases up and exits.
"""

import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from campus.models import Campus
from dispatch.runner import Dispatcher, default_owner


class Command(BaseCommand):
    help = "Run the dispatcher: a cycle per campus every few seconds (campus dispatch settings)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--campus", action="append", dest="campuses", help="campus slug (repeatable)"
        )
        parser.add_argument("--once", action="store_true", help="run one cycle and exit")
        parser.add_argument("--cycles", type=int, default=None, help="stop after N cycles")
        parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
        parser.add_argument("--owner", default=None, help="lease owner name (default host:pid)")

    def handle(self, *args, campuses, once, cycles, seconds, owner, **options):
        if campuses:
            missing = set(campuses) - set(
                Campus.objects.filter(slug__in=campuses).values_list("slug", flat=True)
            )
            if missing:
                raise CommandError(f"no such campus: {', '.join(sorted(missing))}")
        elif not Campus.objects.exists():
            raise CommandError("no campus yet: run `manage.py load_campus` first")
        logging.getLogger("dispatch").setLevel(logging.WARNING)  # we print each cycle ourselves
        dispatcher = Dispatcher(
            owner=owner or default_owner(),
            campus_slugs=campuses,
            log=lambda line: self.stdout.write(line),
            manage_connections=True,
        )

        def stop(signum, frame):
            self.stdout.write("stopping after this cycle…")
            dispatcher.stop.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stdout.write(f"dispatcher {dispatcher.owner} started")
            dispatcher.run(once=once, max_cycles=cycles, seconds=seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"dispatcher {dispatcher.owner} stopped after {dispatcher.cycles} cycles")
