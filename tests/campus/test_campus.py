"""The demo campus: loading it (twice), its walking graph, and the public campus API."""

import json
from collections import Counter

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from campus.geo import haversine_m
from campus.graph import campus_graph
from campus.models import Building, BuildingKind, Campus, GenderRule, PathEdge, TransferStation
from campus.services import path_edge_save
from tests import factories


def load_demo() -> Campus:
    call_command("load_campus", str(settings.DEMO_CAMPUS_FILE), stdout=open("/dev/null", "w"))
    return Campus.objects.get(slug="demo")


@pytest.fixture
def demo(db) -> Campus:
    return load_demo()


def test_demo_campus_has_what_a_campus_needs(demo):
    buildings = Building.objects.filter(campus=demo)
    kinds = Counter(buildings.values_list("kind", flat=True))
    dorm_rules = set(buildings.filter(kind=BuildingKind.DORM).values_list("gender_rule", flat=True))

    assert buildings.count() >= 30
    assert {GenderRule.MALE_ONLY, GenderRule.FEMALE_ONLY} <= dorm_rules
    assert kinds[BuildingKind.CANTEEN] >= 2
    assert kinds[BuildingKind.PARCEL_STATION] >= 1
    stations = TransferStation.objects.filter(campus=demo)
    assert stations.count() == 2
    served = Building.objects.filter(transfer_stations__campus=demo)
    assert served.exists() and all(b.gender_rule != GenderRule.ANY for b in served)
    assert PathEdge.objects.filter(campus=demo).count() > 50
    # Every building's entrance lies inside the campus bounds.
    assert all(demo.contains(b.lng, b.lat) for b in buildings)


def test_reloading_the_demo_campus_changes_nothing(demo, student):
    before = {
        "buildings": dict(Building.objects.filter(campus=demo).values_list("code", "pk")),
        "stations": TransferStation.objects.filter(campus=demo).count(),
        "paths": PathEdge.objects.filter(campus=demo).count(),
        "length": sum(PathEdge.objects.filter(campus=demo).values_list("length_m", flat=True)),
    }
    pickup = Building.objects.filter(campus=demo, kind=BuildingKind.PARCEL_STATION).first()
    dropoff = Building.objects.filter(campus=demo, gender_rule=GenderRule.FEMALE_ONLY).first()
    order = factories.make_order(
        customer=student, campus=demo, pickup=pickup.code, dropoff=dropoff.code
    )

    again = load_demo()

    assert again.pk == demo.pk
    assert Campus.objects.filter(slug="demo").count() == 1
    after = {
        "buildings": dict(Building.objects.filter(campus=demo).values_list("code", "pk")),
        "stations": TransferStation.objects.filter(campus=demo).count(),
        "paths": PathEdge.objects.filter(campus=demo).count(),
        "length": sum(PathEdge.objects.filter(campus=demo).values_list("length_m", flat=True)),
    }
    assert after["buildings"] == before["buildings"]  # same rows: orders keep their places
    assert after["stations"] == before["stations"]
    assert after["paths"] == before["paths"]
    assert after["length"] == pytest.approx(before["length"])
    order.refresh_from_db()
    assert order.dropoff_building == dropoff


def test_every_building_is_reachable_on_foot(demo):
    graph = campus_graph(demo)
    canteen = Building.objects.filter(campus=demo, kind=BuildingKind.CANTEEN).first()
    distances = graph.distances_from(canteen.lng, canteen.lat)
    for building in Building.objects.filter(campus=demo):
        node = graph.nearest_node(building.lng, building.lat)
        assert distances[node] < float("inf"), building.code


def test_walking_routes_are_plausible(demo):
    graph = campus_graph(demo)
    buildings = list(Building.objects.filter(campus=demo).order_by("code"))
    pairs = list(zip(buildings, reversed(buildings), strict=True))[: len(buildings) // 2]
    for a, b in pairs:
        route = graph.route((a.lng, a.lat), (b.lng, b.lat))
        straight = haversine_m(a.lng, a.lat, b.lng, b.lat)
        assert route.distance_m >= straight - 1, (a.code, b.code)
        assert route.distance_m < 3000, (a.code, b.code)
        assert route.coords[0] == (a.lng, a.lat) and route.coords[-1] == (b.lng, b.lat)
        # Consecutive points are close: the route follows paths instead of jumping.
        hops = [haversine_m(*p, *q) for p, q in zip(route.coords, route.coords[1:], strict=False)]
        assert max(hops) < 400, (a.code, b.code)


def test_graph_follows_path_edits(campus):
    graph = campus_graph(campus)
    edge = PathEdge.objects.filter(campus=campus, kind="road").first()
    coords = list(edge.geometry.coords)
    # Bend the road: its stored length follows the drawn geometry and the graph is rebuilt.
    mid = ((coords[0][0] + coords[-1][0]) / 2, coords[0][1] + 0.002)
    edge.geometry = type(edge.geometry)([coords[0], mid, coords[-1]], srid=4326)
    path_edge_save(edge=edge)
    edge.refresh_from_db()
    assert edge.length_m > haversine_m(*coords[0], *coords[-1]) * 2
    assert campus_graph(campus) is not graph


def test_loading_a_broken_file_is_a_clear_error(tmp_path, db):
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(CommandError, match="campus"):
        call_command("load_campus", str(bad))
    with pytest.raises(CommandError):
        call_command("load_campus", str(tmp_path / "missing.geojson"))
    assert not Campus.objects.exists()


# --- the public campus API ---------------------------------------------------------------------


def test_buildings_api_is_public(demo, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        response = Client().get("/api/campus/buildings/")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == Building.objects.filter(campus=demo).count()
    first = body[0]
    assert set(first) == {"id", "code", "name", "kind", "gender_rule", "lat", "lng"}
    assert isinstance(first["lat"], float) and isinstance(first["lng"], float)


def test_building_names_follow_the_language(demo):
    zh = Client().get("/api/campus/buildings/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    en = Client().get("/api/campus/buildings/", HTTP_ACCEPT_LANGUAGE="en").json()
    building = Building.objects.get(campus=demo, code=zh[0]["code"])
    assert zh[0]["name"] == building.name
    assert en[0]["name"] == (building.name_en or building.name)


def test_map_api_is_public_geojson(demo):
    response = Client().get("/api/campus/map/")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["campus"]["name"] and len(body["campus"]["bounds"]) == 4
    features = Counter(f["properties"]["feature"] for f in body["features"])
    assert features["building"] == Building.objects.filter(campus=demo).count()
    assert features["transfer_station"] == 2
    assert features["path"] == PathEdge.objects.filter(campus=demo).count()
    assert all(f["geometry"]["coordinates"] for f in body["features"])


def test_campus_api_without_a_campus_is_empty_not_an_error(db):
    assert Client().get("/api/campus/buildings/").json() == []
    assert Client().get("/api/campus/map/").json()["features"] == []


def test_campus_api_is_read_only(db):
    assert Client().post("/api/campus/buildings/", {}).status_code in (403, 405)
    assert Client().delete("/api/campus/map/").status_code in (403, 405)
