"""Complete delivered orders the customer has not confirmed, releasing their escrow to the rider
and the platform. Orders with an open dispute wait for the operator.

Run it every few minutes (cron: `*/5 * * * * cd /srv/campus-errand && .venv/bin/python manage.py
complete_delivered --after-hours 2`, or a systemd timer).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders import services as order_services
from orders.errors import OrderError
from orders.status import Status
from payments import selectors


class Command(BaseCommand):
    help = "Complete orders delivered more than --after-hours ago (default 2) without a dispute."

    def add_arguments(self, parser):
        parser.add_argument("--after-hours", type=float, default=2.0)

    def handle(self, *args, after_hours: float, **options):
        before = timezone.now() - timedelta(hours=after_hours)
        completed = 0
        for order in selectors.orders_due_to_complete(delivered_before=before):
            try:
                order_services.order_transition(
                    order=order,
                    to=Status.COMPLETED,
                    actor=None,
                    note=f"completed automatically {after_hours:g} h after delivery",
                )
            except OrderError as exc:
                self.stderr.write(f"{order.number}: {exc.message}")
            else:
                completed += 1
        self.stdout.write(f"completed {completed} order(s)")
