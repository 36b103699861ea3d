"""plan_refills: the refill sensor's decision as a pure function (the sensor itself is tested on
a real instance in test_face_inventory.py)."""

from __future__ import annotations

from synth_pipelines.core.faces.refill_plan import Refill, low_buckets, plan_refills

TARGETS = {"female/adult": 100, "male/adult": 100, "male/senior": 0}
LOW_WATER = {"female/adult": 50, "male/adult": 50, "male/senior": 0}


def test_a_bucket_below_its_low_water_mark_is_refilled_to_target_plus_demand() -> None:
    levels = {"female/adult": 49, "male/adult": 50, "male/senior": 0}
    plan = plan_refills(levels, TARGETS, LOW_WATER, {"female/adult": 7}, set(), {})
    assert plan.refills == [Refill("female/adult", 100 + 7 - 49)]
    assert plan.low == ["female/adult"]  # 50 is at the mark, not below it


def test_backordered_demand_makes_a_full_bucket_low() -> None:
    levels = {"female/adult": 100, "male/adult": 100, "male/senior": 0}
    demand = {"male/adult": 130, "male/senior": 3}
    assert low_buckets(levels, TARGETS, LOW_WATER, demand) == ["male/adult", "male/senior"]
    plan = plan_refills(levels, TARGETS, LOW_WATER, demand, set(), {})
    assert plan.refills == [Refill("male/adult", 130), Refill("male/senior", 3)]


def test_in_flight_and_backing_off_buckets_wait() -> None:
    levels = dict.fromkeys(TARGETS, 0)
    plan = plan_refills(
        levels,
        {**TARGETS, "male/senior": 10},
        {**LOW_WATER, "male/senior": 5},
        {},
        in_flight={"female/adult", "male/senior"},
        backoff={"male/adult": "last refill accepted 3 of 100", "male/senior": "short"},
    )
    assert plan.refills == []
    assert plan.in_flight == ["female/adult", "male/senior"]
    assert plan.backing_off == {
        "male/adult": "last refill accepted 3 of 100",
        "male/senior": "short",
    }
    assert plan.summary() == "3 bucket(s) below low-water mark; 2 refilling, 2 backing off"


def test_a_zero_target_bucket_without_demand_is_never_low() -> None:
    levels = dict.fromkeys(TARGETS, 0)
    assert "male/senior" not in low_buckets(levels, TARGETS, LOW_WATER, {})
