from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campus.services import CampusDataError, campus_load_geojson


class Command(BaseCommand):
    help = "Load (or reload) a campus from a GeoJSON file; default: the demo campus."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(settings.DEMO_CAMPUS_FILE))

    def handle(self, *args, path, **options):
        try:
            campus = campus_load_geojson(path=Path(path))
        except (OSError, CampusDataError, KeyError, ValueError) as exc:
            raise CommandError(f"cannot load {path}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"campus {campus.slug}: {campus.buildings.count()} buildings, "
                f"{campus.stations.count()} transfer stations, {campus.paths.count()} paths"
            )
        )
