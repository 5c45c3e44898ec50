"""The campus walking graph: nodes are path end points, edges are path segments.

Built once per campus from PathEdge rows and cached in the process; a change to the paths (new,
edited or deleted segment) changes the cache key, so admin edits take effect without a restart.
"""

from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Max
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from campus.geo import haversine_m
from campus.models import Campus, PathEdge
from campus_errand.memo import remembered

_cache: dict[int, tuple[tuple, "CampusGraph"]] = {}


@dataclass
class Route:
    distance_m: float
    coords: list[tuple[float, float]]  # (lng, lat)


@dataclass
class CampusGraph:
    nodes: np.ndarray  # (n, 2) lng, lat
    edge_coords: dict[tuple[int, int], list[tuple[float, float]]]
    matrix: csr_matrix
    _index: dict[tuple[float, float], int] = field(default_factory=dict)

    @classmethod
    def from_edges(cls, edges: list[tuple[list[tuple[float, float]], float]]) -> "CampusGraph":
        index: dict[tuple[float, float], int] = {}

        def node(pt) -> int:
            key = (round(pt[0], 6), round(pt[1], 6))
            if key not in index:
                index[key] = len(index)
            return index[key]

        rows, cols, weights = [], [], []
        edge_coords: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for coords, length in edges:
            a, b = node(coords[0]), node(coords[-1])
            if a == b:
                continue
            if (a, b) in edge_coords and _polyline_len(edge_coords[(a, b)]) <= length:
                continue
            edge_coords[(a, b)] = list(coords)
            edge_coords[(b, a)] = list(reversed(coords))
            rows += [a, b]
            cols += [b, a]
            weights += [length, length]
        n = len(index)
        matrix = csr_matrix((weights, (rows, cols)), shape=(n, n))
        nodes = np.array(list(index.keys()), dtype=float).reshape(n, 2)
        return cls(nodes=nodes, edge_coords=edge_coords, matrix=matrix, _index=index)

    def nearest_node(self, lng: float, lat: float) -> int:
        # Equirectangular distance is exact enough to pick the nearest node on a campus.
        scale = np.cos(np.radians(lat))
        d = ((self.nodes[:, 0] - lng) * scale) ** 2 + (self.nodes[:, 1] - lat) ** 2
        return int(np.argmin(d))

    def route(self, start: tuple[float, float], end: tuple[float, float]) -> Route:
        """Walking route between two points: to the nearest node, along paths, to the point."""
        a, b = self.nearest_node(*start), self.nearest_node(*end)
        dist, pred = dijkstra(self.matrix, indices=a, return_predecessors=True)
        coords: list[tuple[float, float]] = [tuple(start)]
        if np.isinf(dist[b]):
            coords.append(tuple(end))
            return Route(haversine_m(*start, *end), coords)
        chain = [b]
        while chain[-1] != a:
            chain.append(int(pred[chain[-1]]))
        chain.reverse()
        coords.append(tuple(self.nodes[a]))
        for u, v in zip(chain, chain[1:], strict=False):
            coords.extend(self.edge_coords[(u, v)][1:])
        coords.append(tuple(end))
        return Route(_polyline_len(coords), _dedupe(coords))

    def distances_from(self, lng: float, lat: float) -> np.ndarray:
        return dijkstra(self.matrix, indices=self.nearest_node(lng, lat))


def campus_graph(campus: Campus) -> CampusGraph:
    stats = remembered(
        f"paths-version:{campus.pk}",
        lambda: PathEdge.objects.filter(campus=campus).aggregate(
            n=Count("id"), last_id=Max("id"), changed=Max("updated_at")
        ),
    )
    key = (stats["n"], stats["last_id"], stats["changed"])
    cached = _cache.get(campus.pk)
    if cached and cached[0] == key:
        return cached[1]
    edges = [
        (list(edge.geometry.coords), edge.length_m)
        for edge in PathEdge.objects.filter(campus=campus).only("geometry", "length_m")
    ]
    graph = CampusGraph.from_edges(edges)
    _cache[campus.pk] = (key, graph)
    return graph


def _polyline_len(coords) -> float:
    return sum(haversine_m(*a, *b) for a, b in zip(coords, coords[1:], strict=False))


def _dedupe(coords):
    out = [coords[0]]
    for c in coords[1:]:
        if c != out[-1]:
            out.append(c)
    return out
