"""Expire orders no rider accepted within their campus's limit, refunding them in full.

Run it every minute (cron: `* * * * * cd /srv/campus-errand && .venv/bin/python manage.py
expire_open_orders`, or a systemd timer). Safe to run concurrently and repeatedly: each order is
moved by order_transition, which locks it and refuses a second expiry.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders import services as order_services
from orders.errors import OrderError
from orders.status import Status
from payments import selectors


class Command(BaseCommand):
    help = "Expire open orders past their campus's acceptance limit (full refund, customer told)."

    def handle(self, *args, **options):
        expired = 0
        for order, minutes in selectors.orders_due_to_expire(timezone.now()):
            try:
                order_services.order_transition(
                    order=order,
                    to=Status.EXPIRED,
                    actor=None,
                    note=f"No rider accepted it within {minutes} minutes; refunded in full.",
                )
            except OrderError as exc:  # taken or cancelled meanwhile
                self.stderr.write(f"{order.number}: {exc.message}")
            else:
                expired += 1
        self.stdout.write(f"expired {expired} order(s)")
