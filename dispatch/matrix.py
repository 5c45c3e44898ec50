"""All-pairs walking distances on the campus path graph, precomputed once per campus.

The matrix is in metres between graph nodes; a rider's travel time is distance / speed, with the
rider's own speed (walking or cycling, campus settings). It is cached beside the graph: the
graph's cache (campus.graph) rebuilds when the paths change, and a rebuilt graph is a new
object, so keying this cache on the graph object follows every path edit without a second key.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import dijkstra

from campus.geo import haversine_m
from campus.graph import CampusGraph, campus_graph

# Where two nodes are not connected by paths, walk straight with this detour factor rather than
# calling the trip impossible (a missing path segment should not stop deliveries).
DETOUR_FACTOR = 1.4

_cache: dict[int, tuple[CampusGraph, CampusMatrix]] = {}
_lock = threading.Lock()


@dataclass
class CampusMatrix:
    graph: CampusGraph
    distances: npt.NDArray[np.float64]  # (n, n) metres between nodes
    _snap_cache: dict[tuple[float, float], tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_graph(cls, graph: CampusGraph) -> CampusMatrix:
        n = len(graph.nodes)
        if n == 0:
            return cls(graph, np.zeros((0, 0)))
        distances = dijkstra(graph.matrix, directed=False)
        unreachable = ~np.isfinite(distances)
        if unreachable.any():
            straight = _straight_line_m(graph.nodes) * DETOUR_FACTOR
            distances[unreachable] = straight[unreachable]
        return cls(graph, distances)

    @property
    def size(self) -> int:
        return self.distances.shape[0]

    def locate(self, lng: float, lat: float) -> tuple[int, float]:
        """The nearest node and the straight walk to it in metres."""
        key = (round(lng, 7), round(lat, 7))
        hit = self._snap_cache.get(key)
        if hit is None:
            node = self.graph.nearest_node(lng, lat)
            x, y = self.graph.nodes[node]
            hit = (node, haversine_m(lng, lat, float(x), float(y)))
            if len(self._snap_cache) < 100_000:
                self._snap_cache[key] = hit
        return hit

    def distance_m(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Walking distance between two points (snapped to the graph at both ends)."""
        if self.size == 0:
            return haversine_m(*a, *b) * DETOUR_FACTOR
        (na, sa), (nb, sb) = self.locate(*a), self.locate(*b)
        return sa + float(self.distances[na, nb]) + sb

    def seconds(self, a: int, b: int, speed_mps: float) -> float:
        return float(self.distances[a, b]) / speed_mps


def campus_matrix(campus) -> CampusMatrix:
    graph = campus_graph(campus)
    cached = _cache.get(campus.pk)
    if cached and cached[0] is graph:
        return cached[1]
    with _lock:
        cached = _cache.get(campus.pk)
        if cached and cached[0] is graph:
            return cached[1]
        matrix = CampusMatrix.from_graph(graph)
        _cache[campus.pk] = (graph, matrix)
        return matrix


def _straight_line_m(nodes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lng = np.radians(nodes[:, 0])
    lat = np.radians(nodes[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlng = lng[:, None] - lng[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlng / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def speed_for(travel_mode: str, *, walking_mps: float, cycling_mps: float) -> float:
    mode = (travel_mode or "").lower()
    if mode in ("walk", "walking", "foot", "on_foot"):
        return walking_mps
    return cycling_mps
