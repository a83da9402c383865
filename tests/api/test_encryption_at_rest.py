"""Encryption at rest: sensitive values never reach the database file in clear, and a
ciphertext moved to another row, column, table or institution does not open.

Values are written and read through the API; the database is inspected as raw bytes (SQLite
file and its WAL) and tampered with through Tortoise's connection, as an attacker with
write access to the database would.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import connections

from core.validation import resident_id_check_digit
from tests.factories import Tenant, make_patient, raw_sqlite_bytes

NATIONAL_ID = "11010519491231002X"

CONTACT_CREATE = """
mutation($patientId: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $patientId, input: $input) { id } }"""

PATIENT_FIELDS = ("fullName nationalId phone altPhone address medicalHistory diagnoses allergies currentMedication "
                  "specialNeeds")
READ_PATIENT = "query($id: ID!) { patient(id: $id) { id " + PATIENT_FIELDS + " contacts { id name phone notes } } }"


@pytest.fixture
def sqlite_path(database_url: str) -> Path:
    if not database_url.startswith("sqlite://"):
        pytest.skip("inspects the SQLite file")
    return Path(database_url.removeprefix("sqlite://"))


def raw_database(path: Path) -> bytes:
    """The database as stored: the main file and its write-ahead log and journal, if any."""
    return raw_sqlite_bytes(path)


def phone_digits() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


def resident_id() -> str:
    first17 = "110105" + "1980" + "0101" + "".join(secrets.choice("0123456789") for _ in range(3))
    return first17 + resident_id_check_digit(first17)


def secret_values(national_id: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Distinctive patient and contact values, fresh for each test; phones as typed."""
    tag = secrets.token_hex(4).upper()
    patient = {
        "nationalId": national_id or resident_id(),
        "phone": phone_digits(),
        "altPhone": phone_digits(),
        "address": f"北京市朝阳区幸福大街{tag}号",
        "medicalHistory": f"rheumatic fever in childhood {tag}",
        "diagnoses": f"chronic periodontitis {tag}",
        "allergies": f"penicillin and latex {tag}",
        "currentMedication": f"warfarin 5mg daily {tag}",
        "specialNeeds": f"wheelchair user, hard of hearing {tag}",
    }
    contact = {"phone": phone_digits(), "notes": f"call after six, daughter {tag}"}
    return patient, contact


async def add_contact(tenant: Tenant, patient_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    reply = await tenant.call("nurse", CONTACT_CREATE, patientId=str(patient_id),
                              input={"name": f"Contact {secrets.token_hex(3)}", "relationship": "CHILD", **fields})
    assert not reply.errors, reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])


def as_read(field: str, value: str) -> str:
    """The value as the API returns it: phones in E.164."""
    return "+86" + value if field in ("phone", "altPhone") else value


def plaintexts(patient: dict[str, str], contact: dict[str, str]) -> list[str]:
    values = [*patient.values(), *contact.values()]
    phones = [patient["phone"], patient["altPhone"], contact["phone"]]
    return values + ["+86" + phone for phone in phones]


async def test_sensitive_values_are_not_in_the_database_file(tenant: Tenant, sqlite_path: Path) -> None:
    patient_values, contact_values = secret_values(NATIONAL_ID)
    full_name = f"Clear Name {secrets.token_hex(4)}"
    patient_id = await make_patient(tenant, "nurse", fullName=full_name, nationalIdType="RESIDENT_ID",
                                    **patient_values)
    await add_contact(tenant, patient_id, **contact_values)

    reply = await tenant.call("nurse", READ_PATIENT, id=str(patient_id))
    assert not reply.errors, reply.errors
    read = reply.data["patient"]
    assert {field: read[field] for field in patient_values} == {
        field: as_read(field, value) for field, value in patient_values.items()}
    assert [(c["phone"], c["notes"]) for c in read["contacts"]] == [
        ("+86" + contact_values["phone"], contact_values["notes"])]

    stored = raw_database(sqlite_path)
    assert full_name.encode() in stored  # names are kept in clear: the scan does see the rows
    assert [value for value in plaintexts(patient_values, contact_values) if value.encode() in stored] == []


async def test_no_column_holds_a_plaintext(tenant: Tenant) -> None:
    """Every column of the rows, as the database returns it (on any backend)."""
    patient_values, contact_values = secret_values()
    patient_id = await make_patient(tenant, "nurse", nationalIdType="RESIDENT_ID", **patient_values)
    contact_id = await add_contact(tenant, patient_id, **contact_values)

    rows = (await execute("SELECT * FROM patient WHERE id = ?", patient_id)
            + await execute("SELECT * FROM contact WHERE id = ?", contact_id))
    cells = [bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode()
             for row in rows for v in row.values()]
    assert len(rows) == 2
    assert [value for value in plaintexts(patient_values, contact_values)
            if any(value.encode() in cell for cell in cells)] == []


# -- moved ciphertexts -------------------------------------------------------------------


@dataclass
class Files:
    tenant: Tenant
    rows: dict[str, uuid.UUID]  # p1, p2, pb (B's patient), c1, c2 (contacts of p1, p2), cb
    owner: dict[str, uuid.UUID]  # contact -> its patient
    plaintext: dict[tuple[str, str], str]  # (row, column) -> the value as the API returns it


@pytest.fixture
async def files(tenant: Tenant, other_tenant: Tenant) -> Files:
    files = Files(tenant, {}, {}, {})
    for name, where in (("1", tenant), ("2", tenant), ("b", other_tenant)):
        patient_values, contact_values = secret_values()
        patient, contact = f"p{name}", f"c{name}"
        files.rows[patient] = await make_patient(where, "nurse", nationalIdType="RESIDENT_ID", **patient_values)
        files.rows[contact] = await add_contact(where, files.rows[patient], **contact_values)
        files.owner[contact] = files.rows[patient]
        for field, value in patient_values.items():
            files.plaintext[(patient, COLUMN[field])] = as_read(field, value)
        files.plaintext[(contact, "phone")] = "+86" + contact_values["phone"]
        files.plaintext[(contact, "notes")] = contact_values["notes"]
    return files


COLUMN = {"nationalId": "national_id", "phone": "phone", "altPhone": "alt_phone", "address": "address",
          "medicalHistory": "medical_history", "diagnoses": "diagnoses", "allergies": "allergies",
          "currentMedication": "current_medication", "specialNeeds": "special_needs"}
FIELD = {column: field for field, column in COLUMN.items()} | {"notes": "notes"}


async def execute(sql: str, *params: Any) -> list[dict[str, Any]]:
    """Raw SQL written with ? placeholders, on SQLite or PostgreSQL."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        for n in range(1, len(params) + 1):
            sql = sql.replace("?", f"${n}", 1)
    else:
        params = tuple(str(p) if isinstance(p, uuid.UUID) else p for p in params)
    _, rows = await connection.execute_query(sql, list(params))
    return [dict(row) for row in rows]


async def copy_ciphertext(source: tuple[str, str, uuid.UUID], target: tuple[str, str, uuid.UUID]) -> None:
    """Overwrite one encrypted cell with another's bytes, and check the bytes did move."""
    (src_table, src_column, src_id), (dst_table, dst_column, dst_id) = source, target
    select = f"SELECT {src_column} FROM {src_table} WHERE id = ?"
    await execute(f"UPDATE {dst_table} SET {dst_column} = ({select}) WHERE id = ?", src_id, dst_id)
    same = await execute(f"SELECT ({select}) = {dst_column} AS same FROM {dst_table} WHERE id = ?", src_id, dst_id)
    assert [bool(row["same"]) for row in same] == [True]


MOVES = {
    "another row": (("p1", "diagnoses"), ("p2", "diagnoses")),
    "another column": (("p1", "medical_history"), ("p1", "allergies")),
    "phone to alt phone": (("p1", "phone"), ("p1", "alt_phone")),
    "national id of another row": (("p2", "national_id"), ("p1", "national_id")),
    "national id to address": (("p1", "national_id"), ("p1", "address")),
    "needs of another row": (("p2", "special_needs"), ("p1", "special_needs")),
    "another institution": (("pb", "diagnoses"), ("p1", "diagnoses")),
    "another table": (("p1", "phone"), ("c1", "phone")),
    "contact of another row": (("c1", "notes"), ("c2", "notes")),
    "contact another column": (("c1", "notes"), ("c1", "phone")),
    "contact of another institution": (("cb", "phone"), ("c2", "phone")),
}


def table_of(row: str) -> str:
    return "patient" if row.startswith("p") else "contact"


async def read_field(client: httpx.AsyncClient, files: Files, row: str, column: str) -> httpx.Response:
    """Read one field of one row (and nothing else that is encrypted) as the doctor."""
    if table_of(row) == "patient":
        query = "query($id: ID!) { patient(id: $id) { id fullName " + FIELD[column] + " } }"
        patient_id = files.rows[row]
    else:
        query = "query($id: ID!) { patient(id: $id) { id contacts { id name " + FIELD[column] + " } } }"
        patient_id = files.owner[row]
    return await client.post("/graphql", json={"query": query, "variables": {"id": str(patient_id)}},
                             headers={"authorization": f"Bearer {files.tenant.tokens['doctor']}"})


@pytest.mark.parametrize("move", MOVES)
async def test_moved_ciphertext_does_not_open(client: httpx.AsyncClient, files: Files, move: str) -> None:
    (src_row, src_column), (dst_row, dst_column) = MOVES[move]
    before = await read_field(client, files, dst_row, dst_column)
    assert "errors" not in before.json()  # the field opens before the move

    await copy_ciphertext((table_of(src_row), src_column, files.rows[src_row]),
                          (table_of(dst_row), dst_column, files.rows[dst_row]))
    response = await read_field(client, files, dst_row, dst_column)
    body = response.json()

    assert response.status_code == 200
    patient = body["data"]["patient"]
    if table_of(dst_row) == "patient":
        path: list[Any] = ["patient", FIELD[dst_column]]
        assert patient[FIELD[dst_column]] is None
        assert patient["fullName"] is not None  # the rest of the file still reads
    else:
        index = [c["id"] for c in patient["contacts"]].index(str(files.rows[dst_row]))
        path = ["patient", "contacts", index, FIELD[dst_column]]
        assert patient["contacts"][index][FIELD[dst_column]] is None
    assert [{k: v for k, v in e.items() if k != "locations"} for e in body["errors"]] == [{
        "message": "Unexpected error.",
        "path": path,
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": response.headers["x-request-id"]},
    }]
    assert files.plaintext[(src_row, src_column)] not in response.text
    assert files.plaintext[(dst_row, dst_column)] not in response.text
