"""Run every minute (cron, systemd timer): group orders at their deadline, group meals at their
cutoff, tickets no merchant accepted in time."""

from django.core.management.base import BaseCommand

from merchants.services import takeout_deadlines_run


class Command(BaseCommand):
    help = "Submit due group orders, close group meals at their cutoff, refund unanswered tickets."

    def handle(self, *args, **options):
        done = takeout_deadlines_run()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in done.items()))
