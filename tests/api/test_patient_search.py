"""Patient search as a front desk searches (issue 16), through the API: a name anywhere in it and by pinyin,
the last 4 digits of a phone, a family contact's phone, a name and birth date warning at registration, and the
list's orders and totalCount. Each search has its refused twin (a role that may not read the field)."""

from __future__ import annotations

import hashlib
from typing import Any

from models import Patient
from resolvers import patient as patients
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.factories import CREATE_PATIENT, Tenant, make_patient

SEARCH = """query($filter: PatientFilter, $first: Int! = 50) {
  patients(first: $first, filter: $filter) { nodes { id } }
}"""
ORDERED = """query($order: PatientOrder, $first: Int!, $after: String, $filter: PatientFilter) {
  patients(first: $first, after: $after, orderBy: $order, filter: $filter) {
    nodes { id fullName } pageInfo { hasNextPage endCursor }
  }
}"""
COUNTED = """query($filter: PatientFilter, $first: Int!) {
  patients(first: $first, filter: $filter) { totalCount nodes { id fullName phone } }
}"""
CONTACT_CREATE = "mutation($p: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $p, input: $input) { id } }"
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"


async def found(tenant: Tenant, role: str = "front_desk", **filter_: Any) -> set[str]:
    reply = await tenant.call(role, SEARCH, filter=filter_)
    assert reply.errors == [], reply.errors
    return {node["id"] for node in reply.data["patients"]["nodes"]}


def bad_input(reply: Any) -> tuple[str, str]:
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    return reply.errors[0]["extensions"]["field"], reply.errors[0]["message"]


async def denied_reasons(tenant: Tenant) -> list[tuple[str, str]]:
    return [(e.reason, e.outcome) for e in await tenant.audit_events(outcome="denied")]


# -- by name --------------------------------------------------------------------------------------


async def test_a_name_is_found_anywhere_in_it_and_by_its_pinyin(tenant: Tenant) -> None:
    xiaoming = str(await make_patient(tenant, fullName="张晓明"))
    smith = str(await make_patient(tenant, fullName="John Smith"))
    nana = str(await make_patient(tenant, fullName="欧阳娜娜"))
    zeng = str(await make_patient(tenant, fullName="曾小贤"))
    await make_patient(tenant, fullName="Li Na")

    for term in ("张晓明", "晓明", "zhang xiaoming", "ZhangXiaoming", "xiaoming", "zhangxm", "zxm", "xm"):
        assert await found(tenant, name=term) == {xiaoming}, term
    for term in ("Smith", "smith", "john smith", "JOHN", "hn sm"):
        assert await found(tenant, name=term) == {smith}, term
    assert await found(tenant, name="ouyangnn") == {nana}
    assert await found(tenant, name="oynn") == {nana}
    assert await found(tenant, name="zengxx") == {zeng}  # a surname's other reading (曾: zeng, ceng)
    assert await found(tenant, name="wang") == set()


async def test_a_renamed_file_is_found_by_its_new_name_only(tenant: Tenant) -> None:
    pid = await make_patient(tenant, fullName="王芳")
    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={"fullName": "Mary Jones"})
    assert reply.errors == []

    assert await found(tenant, name="jones") == {str(pid)}
    assert await found(tenant, name="wangf") == set()


async def test_a_bad_name_term_is_refused(tenant: Tenant) -> None:
    for term in ("   ", "x" * 101):
        assert bad_input(await tenant.call("front_desk", SEARCH, filter={"name": term})) == (
            "filter.name", "filter.name: give 1 to 100 characters of a name.")


async def test_a_name_search_stays_within_reach(tenant: Tenant, other_tenant: Tenant) -> None:
    in_a = str(await make_patient(tenant, fullName="张伟"))
    in_b = str(await make_patient(tenant, fullName="张伟", departmentId=str(tenant.departments["B"].id)))
    await make_patient(other_tenant, fullName="张伟")

    assert await found(tenant, name="zhangw") == {in_a, in_b}
    assert await found(tenant, "nurse", name="zhangw") == {in_a}  # the nurse works in department A


async def test_old_files_are_reindexed(tenant: Tenant, services: Services) -> None:
    """Files written before the search columns existed: ``careloop patients reindex`` fills them."""
    pid = await make_patient(tenant, fullName="张晓明", phone="13800138000")
    await Patient.filter(id=pid).update(name_search="", phone_last4_bidx=None)
    assert await found(tenant, name="zhangxm") == set()

    assert await patients.reindex(services, tenant.id) == 1
    assert await patients.reindex(services, tenant.id) == 0  # nothing left to do

    runs = [e for e in await tenant.audit_events() if e.reason == "reindex"]
    assert [(e.actor_kind, e.action, e.resource_id, e.fields_read) for e in runs] == [
        ("system", "update", None, "alt_phone_last4_bidx,name_search,phone_last4_bidx")]

    assert await found(tenant, name="zhangxm") == {str(pid)}
    assert await found(tenant, phoneLast4="8000") == {str(pid)}


# -- by the last 4 digits of a phone --------------------------------------------------------------


async def test_the_last_four_digits_find_main_and_second_phones(tenant: Tenant) -> None:
    main = str(await make_patient(tenant, phone="13800138000"))
    second = str(await make_patient(tenant, phone="13912345678", altPhone="+86 10 6512 8000"))
    await make_patient(tenant, phone="13700001234")
    await make_patient(tenant)

    assert await found(tenant, phoneLast4="8000") == {main, second}
    assert await found(tenant, phoneLast4="5678") == {second}
    assert await found(tenant, phoneLast4="0000") == set()


async def test_the_last_four_digits_are_stored_as_a_keyed_hmac(tenant: Tenant) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    other = await make_patient(tenant, phone="13900008000")
    row, twin = await Patient.get(id=pid), await Patient.get(id=other)

    assert row.phone_last4_bidx is not None and len(row.phone_last4_bidx) == 64
    assert row.phone_last4_bidx == twin.phone_last4_bidx  # the stated leakage: equal last digits are visible
    assert row.phone_last4_bidx not in {row.phone_bidx, hashlib.sha256(b"8000").hexdigest(),
                                        hashlib.sha256(b"phone_last4:8000").hexdigest()}
    assert "8000" not in row.phone_last4_bidx


async def test_a_bad_last_four_is_refused(tenant: Tenant) -> None:
    before = await tenant.audit_count()
    for term in ("800", "80000", "80a0", "１２３４", "+800"):
        assert bad_input(await tenant.call("front_desk", SEARCH, filter={"phoneLast4": term})) == (
            "filter.phoneLast4", "filter.phoneLast4: give exactly 4 digits.")
    assert await tenant.audit_count() == before


async def test_a_role_that_may_not_read_phones_may_not_search_by_their_last_digits(tenant: Tenant) -> None:
    await make_patient(tenant, phone="13800138000")
    reply = await tenant.call("finance", SEARCH, filter={"phoneLast4": "8000"})

    assert reply.codes == ["FORBIDDEN"]
    assert reply.data is None or reply.data["patients"] is None
    assert await denied_reasons(tenant) == [("forbidden", "denied")]


# -- by a family contact's phone -----------------------------------------------------------------------


async def test_a_family_contacts_phone_finds_the_patient(tenant: Tenant, other_tenant: Tenant) -> None:
    mother = await make_patient(tenant, fullName="Wang Fang")
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    for pid in (mother, in_b):
        reply = await tenant.call("front_desk", CONTACT_CREATE, p=str(pid), input={
            "name": "Li Lei", "relationship": "CHILD", "phone": "13900139000"})
        assert reply.errors == []
    elsewhere = await make_patient(other_tenant)
    await other_tenant.call("front_desk", CONTACT_CREATE, p=str(elsewhere), input={
        "name": "Li Lei", "relationship": "CHILD", "phone": "13900139000"})

    assert await found(tenant, contactPhone="139-0013-9000") == {str(mother), str(in_b)}
    assert await found(tenant, "nurse", contactPhone="+8613900139000") == {str(mother)}  # department A only
    assert await found(tenant, contactPhone="13900139001") == set()
    assert bad_input(await tenant.call("front_desk", SEARCH, filter={"contactPhone": "12"}))[0] == (
        "filter.contactPhone")


async def test_a_role_that_may_not_read_contacts_may_not_search_by_their_phone(tenant: Tenant) -> None:
    reply = await tenant.call("finance", SEARCH, filter={"contactPhone": "13900139000"})

    assert reply.codes == ["FORBIDDEN"]
    assert await denied_reasons(tenant) == [("forbidden", "denied")]


# -- a search compares a class on the files whose class the caller reads -----------------------------

ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"


async def test_a_search_finds_only_files_whose_searched_class_the_caller_reads(tenant: Tenant) -> None:
    """Found in review of the field classes: a filter was checked against the role's permission only, so a nurse
    who also works in finance (finance reaches the identity of every file; the nurse reads phones, contacts and
    internal tags of their department's files only) found a file of department B by its phone, its family's
    phone or its tag, and counted it: the match told what the file holds. Now each file a filter compares is one
    whose compared class the caller reads there; the same search by the same person still finds their own."""
    in_a = await make_patient(tenant, phone="13800138001", tags=["oxygen"])
    in_b = await make_patient(tenant, phone="13800138002", tags=["oxygen"],
                              departmentId=str(tenant.departments["B"].id))
    for pid, phone in ((in_a, "13900139001"), (in_b, "13900139002")):
        added = await tenant.call("front_desk", CONTACT_CREATE, p=str(pid), input={
            "name": "Li Lei", "relationship": "CHILD", "phone": phone})
        assert added.errors == [], added.errors
    assigned = await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["nurse"]), to="FINANCE")
    assert assigned.data == {"roleAssign": {"roles": ["FINANCE", "NURSE"]}}
    listed = await tenant.call("nurse", "{ patients(first: 50) { nodes { id } } }")
    assert {str(in_a), str(in_b)} <= {n["id"] for n in listed.data["patients"]["nodes"]}  # both reached: identity
    seq_reads = len(await tenant.audit_events(patient_id=in_b))

    for filter_ in ({"phone": "13800138002"}, {"phoneLast4": "8002"}, {"contactPhone": "13900139002"},
                    {"tag": "oxygen"}):
        reply = await tenant.call("nurse", COUNTED, filter=filter_, first=50)
        assert reply.errors == [], (filter_, reply.errors)
        assert str(in_b) not in {n["id"] for n in reply.data["patients"]["nodes"]}, filter_
        expected = 1 if filter_ == {"tag": "oxygen"} else 0  # the tag: department A's file only
        assert reply.data["patients"]["totalCount"] == expected, filter_
    assert len(await tenant.audit_events(patient_id=in_b)) == seq_reads  # nothing read of it, nothing recorded

    for filter_ in ({"phone": "13800138001"}, {"phoneLast4": "8001"}, {"contactPhone": "13900139001"}):
        reply = await tenant.call("nurse", COUNTED, filter=filter_, first=50)
        assert reply.errors == [] and reply.data["patients"]["totalCount"] == 1, filter_
        assert [(n["id"], n["phone"]) for n in reply.data["patients"]["nodes"]] == [(str(in_a), "+8613800138001")]


# -- a possible duplicate at registration -----------------------------------------------------------


async def register(tenant: Tenant, role: str = "front_desk", anyway: bool = False, **fields: Any) -> dict[str, Any]:
    reply = await tenant.call(role, CREATE_PATIENT, input=fields, anyway=anyway)
    assert reply.errors == [], reply.errors
    return dict(reply.data["patientCreate"])


async def test_the_same_name_and_birth_date_warn_of_a_duplicate(tenant: Tenant) -> None:
    first = await make_patient(tenant, fullName="Zhang Wei", birthDate="1980-01-02")
    rows = await Patient.filter(institution_id=tenant.id).count()

    again = await register(tenant, fullName="  zhang   WEI ", birthDate="1980-01-02")

    assert again == {"patient": None, "returningPatient": {"id": str(first)}, "matchedOn": ["NAME_AND_BIRTH_DATE"]}
    assert await Patient.filter(institution_id=tenant.id).count() == rows
    other_day = await register(tenant, fullName="Zhang Wei", birthDate="1980-01-03")
    assert other_day["patient"] is not None and other_day["matchedOn"] == []
    no_birth_date = await register(tenant, fullName="Zhang Wei")
    assert no_birth_date["patient"] is not None
    anyway = await register(tenant, anyway=True, fullName="Zhang Wei", birthDate="1980-01-02")
    assert anyway["patient"] is not None


async def test_the_phone_match_comes_before_the_name_match(tenant: Tenant) -> None:
    first = await make_patient(tenant, fullName="Li Na", birthDate="1990-05-06", phone="13800138000")

    again = await register(tenant, fullName="Li Na", birthDate="1990-05-06", phone="13800138000")

    assert again["returningPatient"] == {"id": str(first)} and again["matchedOn"] == ["PHONE"]


async def test_a_name_match_outside_reach_is_not_revealed(tenant: Tenant) -> None:
    in_b = str(tenant.departments["B"].id)
    await make_patient(tenant, fullName="Chen Jie", birthDate="1975-03-04", departmentId=in_b)

    again = await register(tenant, "nurse", fullName="Chen Jie", birthDate="1975-03-04",
                           departmentId=str(tenant.departments["A"].id))

    assert again["patient"] is not None and again["returningPatient"] is None


# -- orders and totalCount ---------------------------------------------------------------------------


async def walk(tenant: Tenant, order: dict[str, str] | None, size: int = 2, **filter_: Any) -> list[str]:
    names, after = [], None
    while True:
        reply = await tenant.call("front_desk", ORDERED, order=order, first=size, after=after, filter=filter_ or None)
        assert reply.errors == [], reply.errors
        page = reply.data["patients"]
        names += [node["fullName"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return names
        after = page["pageInfo"]["endCursor"]


async def test_the_list_sorts_by_name_and_pages_through_ties(tenant: Tenant) -> None:
    for name in ("Carol", "Alice", "Bob", "Alice", "Dave"):
        await make_patient(tenant, fullName=name)

    assert await walk(tenant, {"field": "NAME"}) == ["Alice", "Alice", "Bob", "Carol", "Dave"]
    assert await walk(tenant, {"field": "NAME", "direction": "DESC"}, size=3) == [
        "Dave", "Carol", "Bob", "Alice", "Alice"]
    assert await walk(tenant, None) == ["Carol", "Alice", "Bob", "Alice", "Dave"]  # registration order by default
    assert await walk(tenant, {"field": "CREATED_AT", "direction": "DESC"}) == [
        "Dave", "Alice", "Bob", "Alice", "Carol"]


async def test_the_list_sorts_by_last_change(tenant: Tenant) -> None:
    ids = [await make_patient(tenant, fullName=name) for name in ("One", "Two", "Three")]
    reply = await tenant.call("front_desk", UPDATE, id=str(ids[0]), input={"occupation": "Teacher"})
    assert reply.errors == []

    assert await walk(tenant, {"field": "UPDATED_AT", "direction": "DESC"}) == ["One", "Three", "Two"]
    assert await walk(tenant, {"field": "UPDATED_AT"}, size=1) == ["Two", "Three", "One"]


async def test_a_cursor_of_another_order_is_refused(tenant: Tenant) -> None:
    for name in ("A", "B", "C"):
        await make_patient(tenant, fullName=name)
    by_name = await tenant.call("front_desk", ORDERED, order={"field": "NAME"}, first=1)
    cursor = by_name.data["patients"]["pageInfo"]["endCursor"]
    default = await tenant.call("front_desk", ORDERED, first=1)
    default_cursor = default.data["patients"]["pageInfo"]["endCursor"]

    for order, after in (({"field": "NAME", "direction": "DESC"}, cursor), ({"field": "UPDATED_AT"}, cursor),
                         (None, cursor), ({"field": "NAME"}, default_cursor), ({"field": "NAME"}, "x" * 2000),
                         ({"field": "CREATED_AT"}, "bm90IGEgY3Vyc29y")):
        reply = await tenant.call("front_desk", ORDERED, order=order, first=1, after=after)
        assert bad_input(reply) == ("after", "after: not a valid cursor."), order


async def test_total_count_counts_what_the_filter_matches_in_reach(tenant: Tenant) -> None:
    for n in range(3):
        await make_patient(tenant, fullName=f"Zhang {n}")
    await make_patient(tenant, fullName="Zhang B", departmentId=str(tenant.departments["B"].id))
    await make_patient(tenant, fullName="Wang")

    async def count(role: str, **filter_: Any) -> int:
        reply = await tenant.call(role, COUNTED, filter=filter_ or None, first=1)
        assert reply.errors == [], reply.errors
        assert len(reply.data["patients"]["nodes"]) == 1
        return int(reply.data["patients"]["totalCount"])

    assert await count("front_desk") == 5
    assert await count("front_desk", name="zhang") == 4
    assert await count("nurse", name="zhang") == 3  # department A only


async def test_a_sorted_counted_page_costs_the_same_whatever_its_size(tenant: Tenant, sql_counter: SqlCounter
                                                                      ) -> None:
    for n in range(7):
        await make_patient(tenant, "nurse", fullName=f"Patient {n}", phone=f"1380013800{n}")
    query = """query($first: Int!) { patients(first: $first, orderBy: {field: NAME, direction: DESC},
      filter: {name: "patient"}) { totalCount nodes { id fullName phone careTeam { id } } } }"""

    async def cost(first: int) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("nurse", query, first=first)
        assert reply.errors == [] and len(reply.data["patients"]["nodes"]) == first
        return len(sql_counter.statements) - start

    small, large = await cost(2), await cost(6)
    assert small > 0 and large == small
    without_count = query.replace("totalCount ", "")
    start = len(sql_counter.statements)
    assert (await tenant.call("nurse", without_count, first=2)).errors == []
    assert len(sql_counter.statements) - start == small - 1  # the COUNT runs only when asked for



async def test_a_registration_is_told_of_a_file_only_where_the_caller_reads_what_matched(tenant: Tenant) -> None:
    """Found in review of the field classes, with the search above: the duplicate check at registration compared a
    phone on every file the caller reached by any class, so a nurse who also works in finance, registering a phone,
    was told which department-B file holds it (returningPatient, matchedOn PHONE). Now it compares the phone on
    the files whose contact class the caller reads; a file of their own department is still found."""
    in_b = await make_patient(tenant, phone="13800138012", departmentId=str(tenant.departments["B"].id))
    in_a = await make_patient(tenant, phone="13800138011")
    assigned = await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["nurse"]), to="FINANCE")
    assert assigned.data == {"roleAssign": {"roles": ["FINANCE", "NURSE"]}}
    recorded = len(await tenant.audit_events(patient_id=in_b))

    theirs = await register(tenant, "nurse", fullName="Someone Else", phone="13800138012")

    assert theirs["returningPatient"] is None and theirs["matchedOn"] == [] and theirs["patient"] is not None
    assert len(await tenant.audit_events(patient_id=in_b)) == recorded  # nothing of it read, nothing recorded
    own = await register(tenant, "nurse", fullName="Someone Else", phone="13800138011")
    assert own == {"patient": None, "returningPatient": {"id": str(in_a)}, "matchedOn": ["PHONE"]}
