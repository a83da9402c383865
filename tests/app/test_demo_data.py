"""The demo patient generator: deterministic, valid and realistic data."""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections.abc import Iterator
from datetime import date

import pytest

from app.demo_data import DemoContact, DemoPatient, demo_patients
from core.validation import resident_id_check_digit

TODAY = date(2026, 11, 1)
SEEDS = (2026, 1, 7)
CHANNELS = {"sms", "phone", "email", "wechat", "app", "post"}
SEGMENTS = ("vip", "special_needs", "orthodontics", "restoration", "implant", "periodontal")
RELATIONSHIPS = {"spouse", "parent", "child", "sibling", "guardian", "friend", "other"}
PHONE = re.compile(r"^\+861[3-9]\d{9}$")
TAG = re.compile(r"^[\w-]+$")
CHINESE_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
ENGLISH_NAME = re.compile(r"^[A-Z][a-z]+ [A-Z][A-Za-z']+$")
# Real GB/T 2260 county-level codes (Beijing, Shanghai, Guangdong, Zhejiang, Sichuan, Jiangsu, Hubei,
# Shandong, Henan, Hunan, Liaoning, Fujian, Shaanxi).
KNOWN_AREAS = {"110105", "110108", "310104", "310115", "440106", "440305", "330106", "510107", "320102",
               "420106", "370102", "410105", "430104", "210102", "350203", "610113"}
CLINICAL = {"medical_history", "diagnoses", "allergies", "current_medication"}
MAX_LEN = {"full_name": 100, "name": 100, "address": 300} | dict.fromkeys(CLINICAL, 2000)


@pytest.fixture(scope="module", params=SEEDS)
def patients(request: pytest.FixtureRequest) -> list[DemoPatient]:
    return demo_patients(200, seed=request.param)


def _age(birth: date, today: date = TODAY) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _strings(obj: DemoPatient | DemoContact) -> Iterator[tuple[str, str]]:
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if isinstance(value, str):
            yield field.name, value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, str):
                    yield field.name, item
                else:
                    yield from _strings(item)


def test_deterministic_for_a_seed() -> None:
    assert demo_patients(60) == demo_patients(60)
    assert demo_patients(60, seed=5) == demo_patients(60, seed=5)
    assert demo_patients(60, seed=5) != demo_patients(60, seed=6)
    assert demo_patients(60)[:10] == demo_patients(10)  # a prefix does not depend on the count


def test_leaves_the_global_random_alone() -> None:
    random.seed(99)
    state = random.getstate()
    demo_patients(30)
    assert random.getstate() == state


def test_count_is_honoured() -> None:
    assert demo_patients(0) == []
    assert len(demo_patients(1)) == 1
    assert len(demo_patients(37, seed=3)) == 37
    assert len(demo_patients()) == 200
    with pytest.raises(ValueError):
        demo_patients(-1)


def test_resident_ids_are_valid(patients: list[DemoPatient]) -> None:
    residents = [p for p in patients if p.national_id_type == "resident_id"]
    assert len(residents) > 100
    for p in residents:
        nid = p.national_id
        assert re.fullmatch(r"\d{17}[\dX]", nid), nid
        assert resident_id_check_digit(nid[:17]) == nid[17], nid
        assert nid[:6] in KNOWN_AREAS, nid
        assert date(int(nid[6:10]), int(nid[10:12]), int(nid[12:14])) == p.birth_date, nid
        if p.sex in ("male", "female"):
            assert int(nid[16]) % 2 == (1 if p.sex == "male" else 0), (nid, p.sex)


def test_other_identity_documents(patients: list[DemoPatient]) -> None:
    types = {p.national_id_type for p in patients}
    assert types <= {"resident_id", "passport", "hk_macao_permit"}
    assert {"passport", "hk_macao_permit"} <= types
    for p in patients:
        if p.national_id_type == "hk_macao_permit":
            assert re.fullmatch(r"[HM]\d{8}", p.national_id), p.national_id
        elif p.national_id_type == "passport":
            assert re.fullmatch(r"[A-Z0-9]{9}", p.national_id), p.national_id
            assert ENGLISH_NAME.match(p.full_name), p.full_name
    ids = [p.national_id for p in patients]
    assert len(ids) == len(set(ids))


def test_phones_are_mainland_mobiles_and_unique(patients: list[DemoPatient]) -> None:
    phones = [x for p in patients for x in (p.phone, p.alt_phone) if x]
    phones += [c.phone for p in patients for c in p.contacts]
    assert len(phones) > 300
    for phone in phones:
        assert PHONE.match(phone), phone
    assert len(phones) == len(set(phones))
    assert all(p.phone for p in patients if p.alt_phone)


def test_name_mix_and_languages(patients: list[DemoPatient]) -> None:
    chinese = [p for p in patients if CHINESE_NAME.match(p.full_name)]
    english = [p for p in patients if ENGLISH_NAME.match(p.full_name)]
    assert len(chinese) + len(english) == len(patients)
    assert 0.60 <= len(chinese) / len(patients) <= 0.90
    assert {p.preferred_language for p in patients} <= {"zh-CN", "en"}
    assert all(p.preferred_language == "zh-CN" for p in chinese)
    assert sum(p.preferred_language == "en" for p in english) > 0.6 * len(english)
    for p in chinese:
        assert p.address is None or ("号" in p.address and not p.address.isascii()), p.address
    for p in english:
        assert p.address is None or p.address.isascii(), p.address


def test_ages_and_sexes(patients: list[DemoPatient]) -> None:
    ages = [_age(p.birth_date) for p in patients]
    assert min(ages) >= 4 and max(ages) <= 92
    assert any(a < 12 for a in ages) and any(a >= 65 for a in ages)
    assert {p.sex for p in patients} <= {"female", "male", "other", "unknown"}
    assert sum(p.sex in ("female", "male") for p in patients) >= 0.9 * len(patients)
    later = demo_patients(50, today=date(2030, 2, 28))
    assert all(4 <= _age(p.birth_date, date(2030, 2, 28)) <= 92 for p in later)


def test_segments_are_consistent(patients: list[DemoPatient]) -> None:
    for p in patients:
        assert set(p.segments) <= set(SEGMENTS)
        assert list(p.segments) == sorted(set(p.segments), key=SEGMENTS.index)
        assert ("special_needs" in p.segments) == (p.special_needs is not None)
        if set(p.segments) - {"vip", "special_needs"}:
            assert p.diagnoses
        if "orthodontics" in p.segments:
            assert p.diagnoses and re.search(r"(?i)malocclusion|crowding|open bite", p.diagnoses)
    assert 1 <= sum("vip" in p.segments for p in patients) <= 25
    assert any("special_needs" in p.segments for p in patients)


def test_contact_preferences(patients: list[DemoPatient]) -> None:
    for p in patients:
        assert p.preferred_channel in CHANNELS
        assert set(p.contact_channels) <= CHANNELS
        assert len(p.contact_channels) == len(set(p.contact_channels))
        if p.contact_consent:
            assert p.preferred_channel in p.contact_channels
        else:
            assert p.contact_channels == ()
        channels = set(p.contact_channels) | {p.preferred_channel}
        assert p.email or "email" not in channels
        assert p.phone or not channels & {"sms", "phone", "wechat"}
        assert p.address or "post" not in channels
    emails = [p.email for p in patients if p.email]
    assert emails and len(emails) == len(set(emails))
    assert all(re.fullmatch(r"[a-z0-9.]+@example\.(com|cn)", e) for e in emails), emails


def test_contacts(patients: list[DemoPatient]) -> None:
    for p in patients:
        assert 0 <= len(p.contacts) <= 3
        assert all(c.relationship in RELATIONSHIPS for c in p.contacts)
        assert sum(c.relationship == "spouse" for c in p.contacts) <= 1
        assert all(c.name != p.full_name for c in p.contacts)
        age = _age(p.birth_date)
        if age >= 65:
            assert any(c.is_emergency for c in p.contacts), p
        if age < 18:
            assert any(c.relationship in ("parent", "guardian") for c in p.contacts), p
    assert sum(1 <= len(p.contacts) <= 2 for p in patients) > len(patients) / 2


def test_tags(patients: list[DemoPatient]) -> None:
    tags = [t for p in patients for t in p.tags]
    assert tags
    for p in patients:
        assert len(p.tags) == len(set(p.tags))
    for tag in tags:
        assert TAG.match(tag) and "_" not in tag and "%" not in tag and tag == tag.lower(), tag


def test_strings_are_clean_and_fit(patients: list[DemoPatient]) -> None:
    for p in patients:
        for name, value in _strings(p):
            assert value and value == value.strip(), (name, value)
            assert all(unicodedata.category(ch)[0] != "C" for ch in value), (name, value)
            assert len(value) <= MAX_LEN.get(name, 200), (name, value)


def test_realistic_content(patients: list[DemoPatient]) -> None:
    assert any(p.medical_history and "since" in p.medical_history for p in patients)
    assert any(p.current_medication for p in patients)
    assert any(p.allergies for p in patients)
    assert any(p.occupation for p in patients)
    assert sum(p.address is not None for p in patients) > 0.8 * len(patients)
    for p in patients:
        assert p.medical_history is None or p.medical_history.endswith(".")
        if p.current_medication:
            assert p.medical_history  # medication follows a recorded condition
