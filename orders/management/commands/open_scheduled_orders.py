"""Open scheduled orders (预约) whose time has come; run it every minute (cron / systemd timer),
or with --loop as a small long-running process."""

import time

from django.core.management.base import BaseCommand

from orders.services import order_open_due_scheduled


class Command(BaseCommand):
    help = "Open scheduled orders to riders when their lead time arrives."

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", type=int, default=0, metavar="SECONDS", help="Repeat every SECONDS."
        )

    def handle(self, *args, loop: int = 0, **options):
        while True:
            opened = order_open_due_scheduled()
            if opened or options["verbosity"] > 1:
                self.stdout.write(f"opened {opened} scheduled order(s)")
            if not loop:
                return
            time.sleep(loop)
