"""Takeout money tables (payments.services' takeout functions, added for merchants): how a
completed order's escrow is shared out, and how a refund is shared among the people who paid."""

import pytest

from payments.services import takeout_refund_split, takeout_settlement_split


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # food 2300 after the merchant's own discount, platform paid 300 of discounts in, fee 500:
        # merchant 8% of 2300 = 184; rider 10% of 500 = 50
        (
            dict(
                held=2500,
                fee=500,
                merchant_gross=2300,
                platform_funded=300,
                merchant_rate_bp=800,
                rider_rate_bp=1000,
            ),
            {"rider": 450, "merchant": 2116, "commission": 234, "promotions": 300, "customer": 0},
        ),
        # commission rounded half up to the fen: 8% of 1256 = 100.48 -> 100; of 1257 = 100.56 -> 101
        (
            dict(held=1756, fee=500, merchant_gross=1256, merchant_rate_bp=800, rider_rate_bp=0),
            {"rider": 500, "merchant": 1156, "commission": 100, "promotions": 0, "customer": 0},
        ),
        (
            dict(held=1757, fee=500, merchant_gross=1257, merchant_rate_bp=800, rider_rate_bp=0),
            {"rider": 500, "merchant": 1156, "commission": 101, "promotions": 0, "customer": 0},
        ),
        # the tip goes to the rider in full, no commission on it
        (
            dict(
                held=2200,
                fee=500,
                tip=200,
                merchant_gross=1500,
                merchant_rate_bp=0,
                rider_rate_bp=1000,
            ),
            {"rider": 650, "merchant": 1500, "commission": 50, "promotions": 0, "customer": 0},
        ),
        # a dispute refunded 1000 first: the rider is paid, the merchant takes the shortfall
        (
            dict(held=1000, fee=500, merchant_gross=1500, merchant_rate_bp=1000, rider_rate_bp=0),
            {"rider": 500, "merchant": 450, "commission": 50, "promotions": 0, "customer": 0},
        ),
        # no rider (an operator completed it): the fee stays with the platform
        (
            dict(
                held=2000,
                fee=500,
                merchant_gross=1500,
                merchant_rate_bp=0,
                rider_rate_bp=0,
                has_rider=False,
            ),
            {"rider": 0, "merchant": 1500, "commission": 500, "promotions": 0, "customer": 0},
        ),
    ],
)
def test_takeout_settlement_split(kw, expected):
    split = takeout_settlement_split(**kw)
    assert split == expected
    # every fen of the escrow and the platform's discounts goes somewhere
    assert sum(v for k, v in split.items() if k != "promotions") == kw["held"] + kw.get(
        "platform_funded", 0
    )


@pytest.mark.parametrize(
    ("held", "paid", "back"),
    [
        (3000, {1: 1000, 2: 1200, 3: 800}, {1: 1000, 2: 1200, 3: 800}),  # all there: each their own
        (1000, {1: 500, 2: 500}, {1: 500, 2: 500}),
        (999, {1: 500, 2: 500}, {1: 500, 2: 499}),  # short: in proportion, to the fen
        (2, {1: 1, 2: 1, 3: 1}, {1: 1, 2: 1, 3: 0}),
        (1001, {1: 333, 2: 334, 3: 334}, {1: 333, 2: 334, 3: 334}),
        (0, {1: 700}, {1: 0}),
    ],
)
def test_takeout_refund_split(held, paid, back):
    shares = takeout_refund_split(held=held, paid=paid)
    assert shares == back
    assert sum(shares.values()) == held
