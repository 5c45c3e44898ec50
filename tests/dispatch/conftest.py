"""The relay's cast, shared by the relay service tests and the hand-over page tests."""

import pytest

from tests import factories


@pytest.fixture
def to_women(campus, student):
    """An open order to D2 (women only, served by the test campus's transfer station)."""
    return factories.make_order(customer=student, campus=campus, dropoff="D2")


@pytest.fixture
def man(campus):
    """A male rider at the campus's centre: he may carry leg 1 to the station."""
    rider = factories.make_rider(campus, gender="male", username="leg1")
    factories.set_position(rider, dx=0)
    return rider


@pytest.fixture
def woman(campus):
    """A female rider a little east: she may take leg 2 to the door."""
    rider = factories.make_rider(campus, gender="female", username="leg2")
    factories.set_position(rider, dx=1)
    return rider
