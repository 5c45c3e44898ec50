"""Track points lose their spatial index: tracks are read by rider, order and time, never by
place, and the R-tree (GiST on PostGIS) updated for every fix was most of the cost of writing
the history. Django's SpatiaLite schema editor cannot alter a geometry column, so the index is
dropped here by hand on each backend; the model state follows with AlterField."""

import django.contrib.gis.db.models.fields
from django.db import migrations

TABLES = ("tracking_trackpoint", "tracking_archivedtrackpoint")


def drop_spatial_indexes(apps, schema_editor):
    connection = schema_editor.connection
    ops = connection.ops
    with connection.cursor() as cursor:
        for table in TABLES:
            if getattr(ops, "spatialite", False):
                cursor.execute("SELECT DisableSpatialIndex(%s, 'point')", [table])
                cursor.execute(f'DROP TABLE IF EXISTS "idx_{table}_point"')
            elif getattr(ops, "postgis", False):
                cursor.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = %s"
                    " AND indexdef ILIKE '%%USING gist%%'",
                    [table],
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def add_spatial_indexes(apps, schema_editor):
    connection = schema_editor.connection
    ops = connection.ops
    with connection.cursor() as cursor:
        for table in TABLES:
            if getattr(ops, "spatialite", False):
                cursor.execute("SELECT CreateSpatialIndex(%s, 'point')", [table])
            elif getattr(ops, "postgis", False):
                cursor.execute(
                    f'CREATE INDEX IF NOT EXISTS "{table}_point_id" ON "{table}" USING GIST ("point")'
                )


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_proof_chat_retention_access_log"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_spatial_indexes, add_spatial_indexes),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name="point",
                    field=django.contrib.gis.db.models.fields.PointField(
                        spatial_index=False, srid=4326
                    ),
                )
                for model in ("archivedtrackpoint", "trackpoint")
            ],
        ),
    ]
