import json
from pathlib import Path

from django.contrib.gis.geos import LineString, Point, Polygon
from django.db import transaction

from campus.geo import line_length_m
from campus.models import Building, Campus, PathEdge, TransferStation


class CampusDataError(ValueError):
    pass


@transaction.atomic
def campus_load_geojson(*, path: Path) -> Campus:
    """Create or replace a campus from a GeoJSON file (format: README, "Campus data").

    Idempotent: loading the same file again leaves the same campus. Buildings are matched by
    code, so orders that point at them survive a reload; paths and stations are replaced.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    meta = data.get("campus")
    if data.get("type") != "FeatureCollection" or not meta:
        raise CampusDataError("expected a FeatureCollection with a 'campus' member")
    min_lng, min_lat, max_lng, max_lat = meta["bounds"]
    campus, _ = Campus.objects.update_or_create(
        slug=meta["slug"],
        defaults={
            "name": meta["name"],
            "name_en": meta.get("name_en", ""),
            "center": Point(*meta["center"], srid=4326),
            "bounds": Polygon.from_bbox((min_lng, min_lat, max_lng, max_lat)),
        },
    )
    features = data["features"]
    by_kind: dict[str, list[dict]] = {"building": [], "transfer_station": [], "path": []}
    for feature in features:
        kind = feature["properties"].get("feature")
        if kind not in by_kind:
            raise CampusDataError(f"unknown feature kind: {kind!r}")
        by_kind[kind].append(feature)

    buildings: dict[str, Building] = {}
    for feature in by_kind["building"]:
        props = feature["properties"]
        ring = feature["geometry"]["coordinates"][0]
        building, _ = Building.objects.update_or_create(
            campus=campus,
            code=props["code"],
            defaults={
                "name": props["name"],
                "name_en": props.get("name_en", ""),
                "kind": props["kind"],
                "gender_rule": props.get("gender_rule", "any"),
                "footprint": Polygon(ring, srid=4326),
                "entrance": Point(*props["entrance"], srid=4326),
            },
        )
        buildings[building.code] = building

    TransferStation.objects.filter(campus=campus).delete()
    for feature in by_kind["transfer_station"]:
        props = feature["properties"]
        station = TransferStation.objects.create(
            campus=campus,
            code=props["code"],
            name=props["name"],
            name_en=props.get("name_en", ""),
            location=Point(*feature["geometry"]["coordinates"], srid=4326),
        )
        station.serves.set([buildings[code] for code in props.get("serves", [])])

    PathEdge.objects.filter(campus=campus).delete()
    PathEdge.objects.bulk_create(
        PathEdge(
            campus=campus,
            name=feature["properties"].get("name", ""),
            kind=feature["properties"].get("kind", PathEdge.Kind.WALKWAY),
            geometry=LineString(feature["geometry"]["coordinates"], srid=4326),
            length_m=line_length_m(feature["geometry"]["coordinates"]),
        )
        for feature in by_kind["path"]
    )
    return campus


def path_edge_save(*, edge: PathEdge) -> PathEdge:
    """Keep the stored length true to the drawn geometry (admin edits go through here)."""
    edge.length_m = line_length_m(edge.geometry.coords)
    edge.save()
    return edge
