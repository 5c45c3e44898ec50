"""Switch idle riders offline: run it every few minutes.

    */5 * * * *  cd /srv/campus-errand && .venv/bin/python manage.py riders_auto_offline

An online rider whose last position is older than --minutes (default 15) and who carries no
order goes offline through the rider's own switch; the shift log says why ("idle"). Riders
carrying orders stay online and are named in the output and the log (dispatch's stalled-rider
rule handles their orders). --dry-run lists without changing anything.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from riders import selectors, services


class Command(BaseCommand):
    help = (
        "Switch offline the online riders who sent no position for --minutes and carry no "
        "order (their shift ends with the reason 'idle')."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=int,
            default=services.IDLE_OFFLINE_MINUTES,
            help=f"Idle limit (default {services.IDLE_OFFLINE_MINUTES}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="List, change nothing.")

    def handle(self, *args, minutes: int, dry_run: bool = False, **options):
        if minutes < 1:
            raise CommandError("--minutes must be at least 1")
        if dry_run:
            cutoff = timezone.now() - timedelta(minutes=minutes)
            for idle in selectors.riders_idle(cutoff):
                state = f"carrying {idle.carrying}" if idle.carrying else "would go offline"
                self.stdout.write(f"{idle.user.username}: {state}")
            return
        sweep = services.riders_auto_offline(minutes=minutes)
        for name in sweep.kept_carrying:
            self.stdout.write(f"{name}: idle but carrying orders, left online")
        self.stdout.write(
            f"{len(sweep.switched_off)} idle riders switched offline"
            + (f" ({', '.join(sweep.switched_off)})" if sweep.switched_off else "")
            + f", {len(sweep.kept_carrying)} idle with orders left online."
        )
