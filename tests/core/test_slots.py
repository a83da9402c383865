"""Slot arithmetic: sessions cut into slots on the business calendar, holidays, make-up days, leave,
extra sessions, odd slot lengths and a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from core.business_time import Calendar
from core.slots import Adjustment, Plan, Slot, parse_week, slot_starting, slots

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
# National Day week: Thursday 1 to Wednesday 7 October 2026 off; Saturday 10 October worked.
CAL = Calendar(zone=SHANGHAI, holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
               workdays=frozenset({date(2026, 10, 10)}))
WEEKDAYS = {str(d): [["08:00", "12:00"], ["13:30", "17:00"]] for d in range(1, 6)}


def plan(week: dict[str, list[list[str]]] | None = None, minutes: int = 30, capacity: int = 2,
         *adjustments: Adjustment) -> Plan:
    return Plan(parse_week(WEEKDAYS if week is None else week), minutes, capacity, tuple(adjustments))


def local(day: int, hour: int, minute: int = 0, month: int = 10, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def starts(found: list[Slot], zone: ZoneInfo = SHANGHAI) -> list[str]:
    return [s.start.astimezone(zone).strftime("%d %H:%M") for s in found]


def test_a_working_day_is_cut_into_whole_slots() -> None:
    found = slots(plan(), CAL, date(2026, 10, 12), date(2026, 10, 12))  # Monday
    assert len(found) == 8 + 7  # 08:00-12:00 and 13:30-17:00
    assert found[0] == Slot(local(12, 8), local(12, 8, 30), 2)
    assert found[-1].end == local(12, 17)
    assert all(s.end - s.start == timedelta(minutes=30) and s.start.tzinfo == UTC for s in found)
    assert [s.start for s in found] == sorted(s.start for s in found)


def test_an_odd_slot_length_drops_the_last_partial_slot() -> None:
    found = slots(plan(minutes=25), CAL, date(2026, 10, 12), date(2026, 10, 12))
    # 240 minutes hold 9 slots (225), 210 minutes hold 8 (200): the remainders are not offered
    assert starts(found)[:2] == ["12 08:00", "12 08:25"] and len(found) == 9 + 8
    assert found[8].end == local(12, 11, 45) and found[-1].end == local(12, 16, 50)
    assert slots(plan(minutes=240), CAL, date(2026, 10, 12), date(2026, 10, 12)) == [
        Slot(local(12, 8), local(12, 12), 2)]  # the afternoon is shorter than one slot


def test_a_holiday_has_no_slots_and_a_make_up_day_has_mondays() -> None:
    week = {**WEEKDAYS, "1": [["09:00", "10:00"]]}  # Monday differs from the other weekdays
    found = slots(plan(week), CAL, date(2026, 9, 30), date(2026, 10, 11))
    days = sorted({s.start.astimezone(SHANGHAI).date() for s in found})
    assert days == [date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10)]
    assert starts([s for s in found if s.start.astimezone(SHANGHAI).day == 10]) == ["10 09:00", "10 09:30"]


def test_weekends_follow_the_schedules_own_week() -> None:
    week = {"6": [["09:00", "10:00"]]}  # a Saturday clinic: open though the institution's calendar is closed
    assert starts(slots(plan(week), CAL, date(2026, 10, 12), date(2026, 10, 18))) == ["17 09:00", "17 09:30"]


def test_leave_removes_every_slot_it_overlaps() -> None:
    leave = Adjustment("leave", local(12, 9, 10), local(12, 14))
    found = slots(plan(None, 30, 2, leave), CAL, date(2026, 10, 12), date(2026, 10, 12))
    assert starts(found) == ["12 08:00", "12 08:30", "12 14:00", "12 14:30", "12 15:00", "12 15:30", "12 16:00",
                             "12 16:30"]  # 09:00-09:30 overlaps by 20 minutes: gone
    whole_week = Adjustment("leave", local(11, 0), local(18, 0))
    assert slots(plan(None, 30, 2, whole_week), CAL, date(2026, 10, 12), date(2026, 10, 16)) == []


def test_an_extra_session_adds_slots_with_its_own_capacity() -> None:
    extra = Adjustment("extra", local(17, 9), local(17, 11, 10), 5)  # a Saturday morning, 2 h 10 min
    found = slots(plan(None, 30, 2, extra), CAL, date(2026, 10, 17), date(2026, 10, 17))
    assert starts(found) == ["17 09:00", "17 09:30", "17 10:00", "17 10:30"]
    assert {s.capacity for s in found} == {5}
    default = Adjustment("extra", local(17, 9), local(17, 10))
    assert {s.capacity for s in slots(plan(None, 30, 2, default), CAL, date(2026, 10, 17), date(2026, 10, 17))} \
        == {2}


def test_an_extra_session_inside_leave_and_over_regular_slots() -> None:
    leave = Adjustment("leave", local(12, 0), local(13, 0))
    extra = Adjustment("extra", local(12, 10, 15), local(12, 11, 15), 1)  # off the regular grid
    found = slots(plan(None, 30, 2, leave, extra), CAL, date(2026, 10, 12), date(2026, 10, 12))
    assert starts(found) == ["12 10:15", "12 10:45"]
    # without the leave, the regular slots it overlaps give way to the extra session's
    found = slots(plan(None, 30, 2, extra), CAL, date(2026, 10, 12), date(2026, 10, 12))
    assert "12 10:00" not in starts(found) and "12 11:00" not in starts(found)
    assert starts(found)[:6] == ["12 08:00", "12 08:30", "12 09:00", "12 09:30", "12 10:15", "12 10:45"]
    assert len({s.start for s in found}) == len(found)


def test_a_leave_recorded_after_an_extra_session_takes_its_slots() -> None:
    extra = Adjustment("extra", local(12, 10, 15), local(12, 11, 15), 1)
    leave = Adjustment("leave", local(12, 0), local(13, 0))
    assert slots(plan(None, 30, 2, extra, leave), CAL, date(2026, 10, 12), date(2026, 10, 12)) == []
    partly = Adjustment("leave", local(12, 10, 20), local(12, 10, 40))  # the session's first slot only
    assert starts(slots(plan(None, 30, 2, extra, partly), CAL, date(2026, 10, 12), date(2026, 10, 12)))[3:6] == [
        "12 09:30", "12 10:45", "12 11:30"]


def test_only_the_days_asked_for_of_a_long_extra_session() -> None:
    extra = Adjustment("extra", local(1, 0, 0, month=1), local(31, 0, 0, month=12), 3)  # most of the year
    found = slots(plan({}, 20, 2, extra), CAL, date(2026, 10, 12), date(2026, 10, 12))
    assert len(found) == 72 and found[0].start == local(12, 0) and found[-1].end == local(13, 0)


def test_across_berlins_spring_change() -> None:
    berlin = Calendar(zone=BERLIN)
    week = {"5": [["08:00", "12:00"]], "7": [["01:00", "04:00"]], "1": [["08:00", "12:00"]]}
    found = slots(plan(week, 60, 1), berlin, date(2026, 3, 27), date(2026, 3, 30))
    friday = [s for s in found if s.start.astimezone(BERLIN).day == 27]
    monday = [s for s in found if s.start.astimezone(BERLIN).day == 30]
    assert friday[0].start == datetime(2026, 3, 27, 7, tzinfo=UTC)  # 08:00 CET
    assert monday[0].start == datetime(2026, 3, 30, 6, tzinfo=UTC)  # 08:00 CEST
    assert len(friday) == len(monday) == 4
    # Sunday 29 March: 02:00 does not exist, so 01:00-04:00 lasts two hours and holds two slots
    sunday = [s for s in found if s.start.astimezone(BERLIN).day == 29]
    assert [s.start.astimezone(BERLIN).strftime("%H:%M") for s in sunday] == ["01:00", "03:00"]
    assert all(s.end - s.start == timedelta(hours=1) for s in sunday)


def test_across_berlins_autumn_change() -> None:
    berlin = Calendar(zone=BERLIN)
    found = slots(plan({"7": [["01:00", "04:00"]]}, 60, 1), berlin, date(2026, 10, 25), date(2026, 10, 25))
    assert len(found) == 4  # 02:00-03:00 happens twice: four real hours


def test_a_session_until_midnight() -> None:
    found = slots(plan({"1": [["22:00", "00:00"]]}, 60, 1), CAL, date(2026, 10, 12), date(2026, 10, 12))
    assert found[-1].end == local(13, 0)


def test_slot_starting_finds_exactly_one_start() -> None:
    leave = Adjustment("leave", local(12, 9), local(12, 10))
    p = plan(None, 30, 2, leave)
    assert slot_starting(p, CAL, local(12, 8, 30)) == Slot(local(12, 8, 30), local(12, 9), 2)
    assert slot_starting(p, CAL, local(12, 8, 30).astimezone(BERLIN)) is not None  # any offset
    assert slot_starting(p, CAL, local(12, 8, 15)) is None  # not a start
    assert slot_starting(p, CAL, local(12, 9)) is None  # on leave
    assert slot_starting(p, CAL, local(2, 9)) is None  # a holiday


@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(5, 240), day=st.integers(1, 28))
def test_slots_never_overlap_and_stay_inside_their_day(minutes: int, day: int) -> None:
    week = {str(d): [["00:00", "06:00"], ["07:07", "13:13"], ["14:00", "00:00"]] for d in range(1, 8)}
    found = slots(plan(week, minutes), Calendar(zone=BERLIN), date(2026, 3, day), date(2026, 3, day + 2))
    for a, b in pairwise(found):
        assert a.end <= b.start
    for s in found:
        assert s.end - s.start == timedelta(minutes=minutes)


def test_a_departments_week() -> None:
    leave = Adjustment("leave", local(13, 9), local(13, 12))
    extra = Adjustment("extra", local(17, 8), local(17, 12))
    plans = [plan(None, 15, 3, leave, extra) for _ in range(20)]
    total = sum(len(slots(p, CAL, date(2026, 10, 12), date(2026, 10, 18))) for p in plans)
    assert total == 20 * (5 * 30 - 12 + 16)


def naive_slots(p: Plan, calendar: Calendar, first_day: date, last_day: date) -> list[Slot]:
    """The rule as the module's docstring states it, each slot compared with each exception: the reference the
    binary search must agree with."""
    plain = slots(Plan(p.week, p.slot_minutes, p.capacity), calendar, first_day, last_day)
    window = (datetime.combine(first_day, datetime.min.time(), calendar.zone).astimezone(UTC),
              datetime.combine(last_day + timedelta(days=1), datetime.min.time(), calendar.zone).astimezone(UTC))
    length = timedelta(minutes=p.slot_minutes)

    def hit(start: datetime, end: datetime, spans: list[Adjustment]) -> bool:
        return any(start < a.ends_at and a.starts_at < end for a in spans)

    kept = [s for s in plain if not hit(s.start, s.end, list(p.adjustments))]
    extras: list[Slot] = []
    taken: list[Adjustment] = []
    for position, extra in sorted(((n, a) for n, a in enumerate(p.adjustments) if a.kind == "extra"),
                                  key=lambda pair: pair[1].starts_at):
        later_leaves = [a for a in p.adjustments[position + 1:] if a.kind == "leave"]
        start = extra.starts_at
        while start + length <= extra.ends_at:
            if window[0] <= start < window[1] and not hit(start, start + length, taken + later_leaves):
                extras.append(Slot(start, start + length, extra.capacity or p.capacity))
            start += length
        taken.append(extra)
    return sorted(kept + extras, key=lambda s: s.start)


SPAN = st.tuples(st.sampled_from(["leave", "extra"]), st.integers(0, 6 * 24 * 4), st.integers(1, 40),
                 st.sampled_from([None, 1, 5]))


@settings(max_examples=150, deadline=None)
@given(minutes=st.sampled_from([15, 20, 30, 45]), spans=st.lists(SPAN, max_size=12))
def test_exceptions_agree_with_each_slot_compared_with_each_exception(
        minutes: int, spans: list[tuple[str, int, int, int | None]]) -> None:
    """Overlapping, touching and nested leaves and extra sessions, in any order of recording, on quarter hours."""
    monday = local(12, 0)
    adjustments = [Adjustment(kind, monday + timedelta(minutes=15 * at), monday + timedelta(minutes=15 * (at + span)),
                              capacity if kind == "extra" else None)
                   for kind, at, span, capacity in spans]
    p = plan(None, minutes, 2, *adjustments)
    assert slots(p, CAL, date(2026, 10, 12), date(2026, 10, 16)) == naive_slots(p, CAL, date(2026, 10, 12),
                                                                                date(2026, 10, 16))
