from django.core.management.base import BaseCommand

from riders.models import RiderProfile
from riders.services import rider_credit_recompute


class Command(BaseCommand):
    help = "Recompute every rider's credit score (run nightly: old mistakes leave the window)."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", help="Only these riders.")

    def handle(self, *args, usernames, **options):
        profiles = RiderProfile.objects.select_related("user").order_by("pk")
        if usernames:
            profiles = profiles.filter(user__username__in=usernames)
        changed = total = 0
        for profile in profiles.iterator():
            report = rider_credit_recompute(user=profile.user)
            total += 1
            changed += report.score != profile.credit_score
            if options["verbosity"] > 1:
                self.stdout.write(f"{profile.user.username}: {report.score}")
        self.stdout.write(f"{total} riders, {changed} scores changed.")
