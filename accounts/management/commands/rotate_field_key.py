from django.core.management.base import BaseCommand

from accounts.services import user_rotate_field_keys


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields under the first key of FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        count = user_rotate_field_keys()
        self.stdout.write(self.style.SUCCESS(f"re-encrypted {count} rows"))
