"""Takeout price tables: options, packaging, 满减 tiers, coupons and their stacking, the new-user
discount, and the group split (shares always add up to the total, to the fen)."""

import itertools
import random

import pytest

from merchants import pricing
from merchants.pricing import (
    ChosenOption,
    CouponRule,
    GroupRule,
    LineInput,
    OptionRule,
    PriceError,
    TierRule,
)

SIZE = GroupRule(
    "Size",
    required=True,
    multiple=False,
    options=(
        OptionRule(1, "Small", -200),
        OptionRule(2, "Regular", 0),
        OptionRule(3, "Large", 300),
    ),
)
TOPPINGS = GroupRule(
    "Toppings",
    required=False,
    multiple=True,
    max_choices=2,
    options=(
        OptionRule(4, "Egg", 200),
        OptionRule(5, "Beef", 600),
        OptionRule(6, "Tofu", 100),
        OptionRule(7, "Truffle", 5000, available=False),
    ),
)
TIERS = [TierRule(2000, 300), TierRule(3500, 600), TierRule(5000, 1000)]


def line(price=1500, qty=1, packaging=0, deltas=(), member=None):
    options = tuple(ChosenOption("g", f"o{i}", d) for i, d in enumerate(deltas))
    return LineInput("dish", price, packaging, qty, options, member=member)


@pytest.mark.parametrize(
    ("ids", "deltas"),
    [
        ([2], [0]),
        ([3], [300]),
        ([1], [-200]),
        ([3, 4, 5], [300, 200, 600]),
        ([5, 4, 2], [0, 200, 600]),  # in menu order, whatever order they were sent in
    ],
)
def test_options_add_their_price_changes(ids, deltas):
    chosen = pricing.options_choose([SIZE, TOPPINGS], ids)
    assert sorted(o.delta_fen for o in chosen) == sorted(deltas)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([], "Choose a Size"),
        ([1, 2], "only one Size"),
        ([2, 4, 5, 6], "at most 2 of Toppings"),
        ([2, 7], "not available"),
        ([2, 99], "no longer offered"),
    ],
)
def test_bad_option_choices_are_refused_with_the_reason(ids, message):
    with pytest.raises(PriceError) as exc:
        pricing.options_choose([SIZE, TOPPINGS], ids)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("price", "qty", "packaging", "deltas", "items", "box"),
    [
        (1500, 1, 100, (), 1500, 100),
        (1500, 2, 100, (300,), 3600, 200),
        (1500, 3, 0, (300, 200), 6000, 0),
        (150, 1, 50, (-200,), 0, 50),  # a line never costs less than nothing
    ],
)
def test_line_prices_with_options_and_packaging(price, qty, packaging, deltas, items, box):
    priced = pricing.price_order(lines=[line(price, qty, packaging, deltas)], delivery_fen=0)
    assert (priced.items_fen, priced.packaging_fen) == (items, box)


@pytest.mark.parametrize(
    ("food", "saved"),
    [(1999, 0), (2000, 300), (3499, 300), (3500, 600), (4999, 600), (5000, 1000), (9000, 1000)],
)
def test_the_best_reached_tier_applies(food, saved):
    priced = pricing.price_order(lines=[line(food)], delivery_fen=500, tiers=TIERS)
    assert priced.tier_fen == saved
    assert priced.total_fen == food + 500 - saved


def test_packaging_does_not_count_towards_a_tier():
    priced = pricing.price_order(lines=[line(1900, packaging=200)], delivery_fen=0, tiers=TIERS)
    assert priced.tier_fen == 0


PLATFORM_5 = CouponRule(1, "¥5 off ¥25", 500, min_spend_fen=2500)
MERCHANT_4 = CouponRule(2, "Shop ¥4", 400, funded_by="merchant")
SOLO_8 = CouponRule(3, "¥8, no 满减", 800, min_spend_fen=3000, stacks_with_tiers=False)


@pytest.mark.parametrize(
    (
        "food",
        "coupon",
        "new_user",
        "tier",
        "coupon_off",
        "nu",
        "merchant_funded",
        "platform_funded",
    ),
    [
        # a coupon under its minimum spend does nothing (and says why)
        (2400, PLATFORM_5, 0, 300, 0, 0, 300, 0),
        (2500, PLATFORM_5, 0, 300, 500, 0, 300, 500),
        (2500, MERCHANT_4, 0, 300, 400, 0, 700, 0),
        # a coupon that does not combine with 满减 replaces the tier
        (3600, SOLO_8, 0, 0, 800, 0, 0, 800),
        # the new-user discount stacks with everything, funded by the platform
        (3600, PLATFORM_5, 300, 600, 500, 300, 600, 800),
        (1000, None, 300, 0, 0, 300, 0, 300),
    ],
)
def test_coupon_stacking_and_who_funds_each_saving(
    food, coupon, new_user, tier, coupon_off, nu, merchant_funded, platform_funded
):
    priced = pricing.price_order(
        lines=[line(food)], delivery_fen=400, tiers=TIERS, coupon=coupon, new_user_fen=new_user
    )
    assert (priced.tier_fen, priced.coupon_fen, priced.new_user_fen) == (tier, coupon_off, nu)
    assert (priced.merchant_funded_fen, priced.platform_funded_fen) == (
        merchant_funded,
        platform_funded,
    )
    assert priced.merchant_funded_fen + priced.platform_funded_fen == priced.discount_fen
    assert priced.total_fen == food + 400 - tier - coupon_off - nu
    # every saving is a line of its own
    assert [x.code for x in priced.saving_lines] == [
        c for c, v in (("tier", tier), ("coupon", coupon_off), ("new_user", nu)) if v
    ]
    assert sum(x.amount_fen for x in priced.lines) == priced.total_fen


def test_discounts_never_touch_the_delivery_fee():
    big = CouponRule(9, "¥30", 3000)
    priced = pricing.price_order(
        lines=[line(1000, packaging=100)], delivery_fen=500, coupon=big, new_user_fen=300
    )
    assert priced.coupon_fen == 1100 and priced.new_user_fen == 0
    assert priced.total_fen == 500


def test_price_best_picks_the_cheapest_combination_for_the_customer():
    best = pricing.price_best(
        lines=[line(3600)], delivery_fen=400, tiers=TIERS, coupons=[PLATFORM_5, SOLO_8]
    )
    # 满减 600 + ¥5 coupon (1100) beats the ¥8 coupon alone (800)
    assert best.coupon == PLATFORM_5 and best.discount_fen == 1100


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (200, [1, 1, 1], [67, 67, 66]),
        (1, [1, 1, 1], [1, 0, 0]),
        (0, [5, 7], [0, 0]),
        (600, [1500, 3000, 4500], [100, 200, 300]),
        (301, [1000, 1000, 1000], [101, 100, 100]),
        (7, [0, 0], [4, 3]),
        (-100, [1, 1, 1], [-34, -33, -33]),
    ],
)
def test_split_by_largest_remainder(total, weights, shares):
    assert pricing.split_by_weights(total, weights) == shares


def test_group_split_adds_up_to_the_fen_whatever_the_carts():
    rng = random.Random(6)
    for _ in range(500):
        n = rng.randint(1, 6)
        members = list(range(1, n + 1))
        lines = [
            line(rng.randint(1, 4000), rng.randint(1, 3), rng.choice([0, 50, 100]), member=m)
            for m in members
            for _ in range(rng.randint(1, 3))
        ]
        fee = rng.randint(0, 1999)
        breakdown, shares = pricing.price_group(
            members=members, lines=lines, delivery_fen=fee, tiers=TIERS
        )
        assert sum(s.total_fen for s in shares) == breakdown.total_fen
        assert sum(s.delivery_fen for s in shares) == fee
        assert sum(s.discount_fen for s in shares) == breakdown.discount_fen
        assert max(s.delivery_fen for s in shares) - min(s.delivery_fen for s in shares) <= 1
        assert all(s.total_fen >= 0 for s in shares)


def test_group_split_table():
    """Three roommates: ¥15, ¥12 and ¥9.50 of food, ¥1 of boxes each; ¥5 delivery; 满35减6."""
    lines = [
        line(1500, packaging=100, member=1),
        line(1200, packaging=100, member=2),
        line(950, packaging=100, member=3),
    ]
    breakdown, shares = pricing.price_group(
        members=[1, 2, 3], lines=lines, delivery_fen=500, tiers=TIERS
    )
    assert breakdown.tier_fen == 600
    # fee 500 = 167 + 167 + 166; 满减 600 by food 1500:1200:950 = 246.6 / 197.3 / 156.2
    assert [(s.delivery_fen, s.discount_fen) for s in shares] == [
        (167, 247),
        (167, 197),
        (166, 156),
    ]
    assert [s.total_fen for s in shares] == [1520, 1270, 1060]
    assert sum(s.total_fen for s in shares) == breakdown.total_fen == 3850


def test_a_member_with_only_drinks_still_pays_a_fair_fee_share():
    lines = [line(600, member=1), line(4400, member=2)]
    _b, shares = pricing.price_group(members=[1, 2], lines=lines, delivery_fen=301, tiers=TIERS)
    assert [s.delivery_fen for s in shares] == [151, 150]
    assert [s.discount_fen for s in shares] == [120, 880]  # 满50减10 shared 600:4400


@pytest.mark.parametrize("n", range(1, 8))
def test_even_split_of_every_small_fee(n):
    for fee in range(0, 200):
        parts = pricing.split_evenly(fee, n)
        assert sum(parts) == fee and max(parts) - min(parts) <= 1
        assert parts == sorted(parts, reverse=True)  # the leftover fen go to the first members
    assert list(itertools.islice(pricing.split_evenly(5, n), 1)) == [5 // n + (1 if 5 % n else 0)]
