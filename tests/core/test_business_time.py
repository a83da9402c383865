"""Business time and the SLA clock: nights, weekends, holidays, make-up working days, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.business_time import Calendar, NoWorkingTime, calendar_time
from core.sla import Clock, SlaState

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A National Day week: Thursday 1 to Wednesday 7 October 2026 off; Saturday 10 October worked.
HOLIDAYS = frozenset(date(2026, 10, d) for d in range(1, 8))
MAKE_UP = frozenset({date(2026, 10, 10)})
CAL = Calendar(zone=SHANGHAI, holidays=HOLIDAYS, workdays=MAKE_UP)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def local(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def test_within_one_morning() -> None:
    assert CAL.add(local(12, 9), 2 * H) == local(12, 11)  # Monday 12 October


def test_lunch_break_does_not_count() -> None:
    assert CAL.add(local(12, 11), 2 * H) == local(12, 14)


def test_over_the_night() -> None:
    assert CAL.add(local(12, 16), 2 * H) == local(13, 9)


def test_received_at_night_starts_next_morning() -> None:
    assert CAL.add(local(12, 22), 30 * M) == local(13, 8, 30)


def test_over_the_weekend() -> None:
    assert CAL.add(local(16, 16), 2 * H) == local(19, 9)  # Friday 16 -> Monday 19


def test_one_business_day_from_friday_afternoon() -> None:
    assert CAL.add(local(16, 15), 8 * H) == local(19, 15)


def test_holiday_week_is_skipped() -> None:
    # Wednesday 30 September 16:00 + 2 h: 1-7 October are holidays, Thursday 8 is a working day.
    assert CAL.add(local(30, 16, month=9), 2 * H) == local(8, 9)


def test_make_up_saturday_is_worked() -> None:
    assert CAL.add(local(9, 16), 2 * H) == local(10, 9)  # Friday 9 -> make-up Saturday 10


def test_an_ordinary_saturday_is_not() -> None:
    assert CAL.add(local(23, 16), 2 * H) == local(26, 9)  # Friday 23 -> Monday 26


def test_five_business_days_across_the_holiday() -> None:
    # From Tuesday 29 September 09:00: 29, 30 Sep, 8, 9, 10 (make-up) Oct -> Monday 12 at 09:00.
    assert CAL.add(local(29, 9, month=9), 40 * H) == local(12, 9)


def test_calendar_time_counts_everything() -> None:
    always = calendar_time(SHANGHAI)
    assert always.add(local(3, 23), 24 * H) == local(4, 23)
    assert always.between(local(3, 23), local(4, 23)) == 24 * H


def test_between_is_working_time() -> None:
    assert CAL.between(local(16, 16), local(19, 9)) == 2 * H
    assert CAL.between(local(19, 9), local(16, 16)) == timedelta(0)


def test_a_calendar_without_working_time_says_so() -> None:
    with pytest.raises(NoWorkingTime):
        Calendar(zone=SHANGHAI, week={}).add(local(12, 9), H)


def test_daylight_saving_zone() -> None:
    berlin = Calendar(zone=ZoneInfo("Europe/Berlin"))
    friday = datetime(2026, 3, 27, 16, tzinfo=ZoneInfo("Europe/Berlin"))  # clocks go forward on Sunday 29
    assert berlin.add(friday, 2 * H) == datetime(2026, 3, 30, 9, tzinfo=ZoneInfo("Europe/Berlin"))


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(start=instants, minutes=st.integers(min_value=1, max_value=60 * 80))
def test_add_then_measure_gives_back_the_duration(start: datetime, minutes: int) -> None:
    end = CAL.add(start, minutes * M)
    assert CAL.between(start, end) == minutes * M
    assert CAL.between(start, end - timedelta(microseconds=1)) < minutes * M


@settings(max_examples=100, deadline=None)
@given(start=instants, a=st.integers(min_value=0, max_value=3000), b=st.integers(min_value=0, max_value=3000))
def test_adding_in_two_steps_is_adding_once(start: datetime, a: int, b: int) -> None:
    assert CAL.add(CAL.add(start, a * M), b * M) == CAL.add(start, (a + b) * M)


# -- the SLA clock ------------------------------------------------------------------------


def test_clock_states_on_business_time() -> None:
    clock = Clock(started_at=local(12, 9), target=2 * H, calendar=CAL)
    assert clock.due_at == local(12, 11)
    assert clock.at_risk_at == local(12, 10, 36)
    assert clock.state(local(12, 10)) is SlaState.ON_TRACK
    assert clock.state(local(12, 10, 36)) is SlaState.AT_RISK
    assert clock.state(local(12, 11)) is SlaState.BREACHED
    assert clock.time_left(local(12, 10)) == H
    assert clock.time_left(local(12, 12, 30)) == -H  # 11:00-12:00 and 13:00-12:30 is none: one hour over


def test_a_pause_moves_the_due_time_by_the_working_time_paused() -> None:
    pauses = [(local(12, 9, 30), local(12, 14))]  # 2 h 30 of working time waiting on the patient
    clock = Clock(started_at=local(12, 9), target=2 * H, calendar=CAL, pauses=pauses)
    assert clock.due_at == local(12, 15, 30)
    assert clock.used(local(12, 15)) == H + 30 * M


def test_while_paused_the_clock_has_no_due_time() -> None:
    clock = Clock(started_at=local(12, 9), target=2 * H, calendar=CAL, pauses=[(local(12, 10), None)])
    assert clock.due_at is None
    assert clock.state(local(19, 9)) is SlaState.PAUSED
    assert clock.used(local(19, 9)) == H


def test_a_pause_after_the_breach_does_not_rescue_it() -> None:
    clock = Clock(started_at=local(12, 9), target=H, calendar=CAL, pauses=[(local(12, 11), None)])
    assert clock.due_at == local(12, 10)
    assert clock.state(local(12, 11, 30)) is SlaState.BREACHED


def test_stopped_clock_is_met_or_missed() -> None:
    assert Clock(local(12, 9), H, CAL, stopped_at=local(12, 9, 59)).state(local(20, 9)) is SlaState.MET
    assert Clock(local(12, 9), H, CAL, stopped_at=local(12, 10, 1)).state(local(20, 9)) is SlaState.MISSED


def test_no_working_time_added_at_a_closing_time_stays_there() -> None:
    """Found in review: adding nothing at 17:00 gave the next morning, so a pause over lunch or in the evening (no
    working time in it) moved a due time that ends a working day to the next day's opening."""
    calendar = Calendar(zone=SHANGHAI)
    five_pm = datetime(2030, 1, 7, 17, 0, tzinfo=SHANGHAI)  # a Monday
    assert calendar.add(five_pm, timedelta(0)) == five_pm
    received = datetime(2030, 1, 7, 8, 0, tzinfo=SHANGHAI)
    lunch = (datetime(2030, 1, 7, 12, 10, tzinfo=SHANGHAI), datetime(2030, 1, 7, 12, 50, tzinfo=SHANGHAI))
    assert Clock(received, timedelta(hours=8), calendar, [lunch]).due_at == five_pm


def test_a_target_stopped_at_its_due_time_is_met() -> None:
    calendar = Calendar(zone=SHANGHAI)
    received = datetime(2030, 1, 7, 9, 0, tzinfo=SHANGHAI)
    clock = Clock(received, timedelta(hours=2), calendar, [], stopped_at=received + timedelta(hours=2))
    assert clock.state(received + timedelta(hours=3)) == SlaState.MET


@pytest.mark.parametrize(("week", "day"), [
    (None, timedelta(hours=8)),  # the standard week
    ({d: ((time(0), time(0)),) for d in range(7)}, timedelta(hours=24)),  # round the clock
    ({d: ((time(8), time(12)),) for d in range(5)}, timedelta(hours=4)),  # mornings only
    ({**{d: ((time(8), time(17)),) for d in range(5)}, 5: ((time(8), time(12)),)}, timedelta(hours=9)),  # + Sat
    ({0: ((time(8), time(12)),), 1: ((time(8), time(16)),)}, timedelta(hours=8)),  # a tie: the longer
    ({}, timedelta(hours=8)),  # no working day: the standard one
])
def test_a_business_day_is_the_calendars_usual_working_day(week: dict[int, tuple[tuple[time, time], ...]] | None,
                                                           day: timedelta) -> None:
    calendar = Calendar(zone=SHANGHAI) if week is None else Calendar(zone=SHANGHAI, week=week)
    assert calendar.business_day() == day
