"""The all-pairs travel matrix on the campus path graph: correct, cached per campus, rebuilt when
the paths change, and turned into travel times with each rider's speed."""

import numpy as np
import pytest

from campus.graph import campus_graph
from dispatch import selectors
from dispatch.matrix import DETOUR_FACTOR, CampusMatrix, campus_matrix, speed_for
from dispatch.models import TravelMode
from tests import factories


def test_all_pairs_agree_with_single_source_dijkstra(campus):
    matrix = campus_matrix(campus)
    graph = campus_graph(campus)
    assert matrix.size == len(graph.nodes) > 5
    for node in range(matrix.size):
        lng, lat = graph.nodes[node]
        np.testing.assert_allclose(matrix.distances[node], graph.distances_from(lng, lat))
    np.testing.assert_allclose(matrix.distances, matrix.distances.T)


def test_walking_distance_between_buildings_follows_the_paths(campus):
    matrix = campus_matrix(campus)
    c1, d3 = factories.building(campus, "C1"), factories.building(campus, "D3")
    metres = matrix.distance_m((c1.lng, c1.lat), (d3.lng, d3.lat))
    graph_route = campus_graph(campus).route((c1.lng, c1.lat), (d3.lng, d3.lat)).distance_m
    assert metres == pytest.approx(graph_route, rel=1e-6)
    # Entrance paths up and down (2 x ~50 m) plus five road segments of ~96 m.
    assert 550 < metres < 600


def test_the_matrix_is_cached_per_campus_and_rebuilt_when_paths_change(campus):
    first = campus_matrix(campus)
    assert campus_matrix(campus) is first
    other = factories.make_campus()
    assert campus_matrix(other) is not first
    factories.add_path(
        campus,
        [(factories.LNG0 + 3 * factories.DX, factories.LAT0), (factories.LNG0, factories.LAT0)],
    )
    rebuilt = campus_matrix(campus)
    assert rebuilt is not first
    assert campus_matrix(campus) is rebuilt


def test_disconnected_places_fall_back_to_a_straight_walk():
    from campus.graph import CampusGraph

    graph = CampusGraph.from_edges(
        [([(120.0, 30.0), (120.001, 30.0)], 96.2), ([(120.0, 30.01), (120.001, 30.01)], 96.2)]
    )
    matrix = CampusMatrix.from_graph(graph)
    assert np.isfinite(matrix.distances).all()
    straight = 1112  # ~0.01 degree of latitude
    assert matrix.distances[0, 2] == pytest.approx(straight * DETOUR_FACTOR, rel=0.01)


def test_travel_times_use_each_riders_speed(campus):
    settings = factories.dispatch_settings(
        campus, walking_speed_mps=1.25, cycling_speed_mps=5.0, default_travel_mode="cycling"
    )
    assert speed_for("walking", walking_mps=1.25, cycling_mps=5.0) == 1.25
    assert speed_for("bike", walking_mps=1.25, cycling_mps=5.0) == 5.0
    rider = factories.make_rider(campus)
    profile = rider.rider_profile
    assert selectors.rider_speed(profile, settings) == 5.0
    profile.travel_mode = TravelMode.WALKING  # a rider profile that says how they travel
    assert selectors.rider_speed(profile, settings) == 1.25
    matrix = campus_matrix(campus)
    assert matrix.seconds(0, 1, 5.0) == pytest.approx(matrix.distances[0, 1] / 5.0)
