from django.core.management.base import BaseCommand, CommandError

from campus.selectors import campus_default
from dispatch.demo import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Create the demo accounts (idempotent). Load a campus first (load_campus)."

    def handle(self, *args, **options):
        campus = campus_default()
        if campus is None:
            raise CommandError("no campus yet: run `manage.py load_campus` first")
        accounts = demo_seed(campus=campus)
        self.stdout.write(self.style.SUCCESS(f"demo accounts (password for all: {DEMO_PASSWORD})"))
        for account in accounts:
            self.stdout.write(f"  {account.role:9} {account.username}")
