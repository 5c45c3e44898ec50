"""Apply the location retention period (tracking.retention): run it once a day.

    15 3 * * *  cd /srv/campus-errand && .venv/bin/python manage.py purge_tracks

(or the systemd timer in the README). --dry-run counts without changing anything.
"""

from django.core.management.base import BaseCommand

from tracking import retention


class Command(BaseCommand):
    help = (
        "Archive each order's downsampled track, then delete raw rider fixes older than "
        "TRACK_RETENTION_DAYS, and archived tracks and chats older than TRACK_ARCHIVE_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep raw fixes this many days (default: TRACK_RETENTION_DAYS).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")

    def handle(self, *args, days=None, dry_run=False, **options):
        if days is not None and days < 1:
            self.stderr.write("--days must be at least 1")
            raise SystemExit(2)
        report = retention.tracks_purge(days=days, dry_run=dry_run)
        self.stdout.write(report.line())
