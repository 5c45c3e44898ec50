from django.core.cache import cache
from django.db.models import QuerySet
from django.utils.translation import get_language

from campus.models import Building, Campus, PathEdge, TransferStation


def campus_default() -> Campus | None:
    return Campus.objects.order_by("pk").first()


# Shapes stay out of the remembered buildings: ordering and tracking never draw them, and each one
# costs a GEOS read at every recall.
_REMEMBERED = Building.objects.select_related("campus").defer(
    "footprint", "campus__bounds", "campus__center"
)


def building_remembered(pk: int) -> Building | None:
    """A building with its campus (no shapes), remembered a few seconds (campus_errand.memo):
    every quote, order and tracking socket reads the same few dozen rows again."""
    from campus_errand.memo import remembered

    return remembered(f"building:{pk}", lambda: _REMEMBERED.filter(pk=pk).first())


def building_list(*, campus: Campus | None = None) -> QuerySet[Building]:
    qs = Building.objects.select_related("campus").order_by("kind", "code")
    return qs.filter(campus=campus) if campus else qs


def campus_map_geojson(campus: Campus) -> dict:
    """Buildings, paths and stations as one GeoJSON for the maps (cached: it rarely changes)."""
    key = (
        f"campus-map:{campus.pk}:{get_language()}:{PathEdge.objects.filter(campus=campus).count()}"
    )
    data = cache.get(key)
    if data is None:
        data = _campus_map_geojson(campus)
        cache.set(key, data, 300)
    return data


def _campus_map_geojson(campus: Campus) -> dict:
    features = []
    for b in Building.objects.filter(campus=campus):
        features.append(
            {
                "type": "Feature",
                "geometry": _geojson(b.footprint) if b.footprint else _geojson(b.entrance),
                "properties": {
                    "feature": "building",
                    "id": b.pk,
                    "code": b.code,
                    "name": b.display_name,
                    "kind": b.kind,
                    "gender_rule": b.gender_rule,
                    "entrance": [b.lng, b.lat],
                },
            }
        )
    for s in TransferStation.objects.filter(campus=campus):
        features.append(
            {
                "type": "Feature",
                "geometry": _geojson(s.location),
                "properties": {"feature": "transfer_station", "code": s.code, "name": str(s)},
            }
        )
    for p in PathEdge.objects.filter(campus=campus).only("geometry", "kind"):
        features.append(
            {
                "type": "Feature",
                "geometry": _geojson(p.geometry),
                "properties": {"feature": "path", "kind": p.kind},
            }
        )
    b = campus.bounds.extent
    return {
        "type": "FeatureCollection",
        "campus": {
            "name": campus.display_name,
            "center": [campus.center.x, campus.center.y],
            "bounds": list(b),
        },
        "features": features,
    }


def _geojson(geom) -> dict:
    import json

    return json.loads(geom.geojson)
