"""Takeout personas: a canteen window with its staff member ("merchant", the persona STYLE names),
a second merchant with its own staff, and a small menu."""

import pytest

from tests import factories


@pytest.fixture
def merchant(db):
    """The merchant persona: a user who works at a canteen window."""
    return factories.make_user(username="merchant", gender="female")


@pytest.fixture
def window(campus, merchant):
    return factories.make_merchant(campus, staff=[merchant], slug="noodles", name="面馆")


@pytest.fixture
def other_merchant(db):
    return factories.make_user(username="merchant_b", gender="male")


@pytest.fixture
def other_window(campus, other_merchant):
    return factories.make_merchant(campus, staff=[other_merchant], slug="dumplings", name="饺子")


@pytest.fixture
def noodles(window):
    """¥15 beef noodles, ¥1 box; size (required, one of: regular, large +¥3) and toppings
    (optional, several: egg +¥2, extra beef +¥6)."""
    return factories.make_item(
        window,
        name="牛肉面",
        price_fen=1500,
        packaging_fen=100,
        options=[
            ("Size", True, False, [("Regular", 0), ("Large", 300)]),
            ("Toppings", False, True, [("Egg", 200), ("Extra beef", 600)]),
        ],
    )


@pytest.fixture
def tea(window):
    return factories.make_item(window, name="柠檬茶", price_fen=600)
