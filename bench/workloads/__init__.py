"""The seven workloads: a GraphQL operation each, the account that runs it, and its variables.

The same JSON body goes to careloop and to the baseline (which dispatches on ``operationName``);
``post.lua`` makes wrk send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

LUA = Path(__file__).with_name("post.lua")

PATIENT_FIELDS = "id fullName sex birthDate phone address allergies contacts { name relationship phone }"

# The floor: what any request of a signed-in caller costs before it reads anything (no statement, no audit row)
W0 = "query W0 { __typename }"

W1 = f"""query W1($first: Int!, $after: String) {{
  patients(first: $first, after: $after) {{
    edges {{ node {{ {PATIENT_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

W2 = f"""query W2($id: ID!) {{ patient(id: $id) {{ {PATIENT_FIELDS} }} }}"""

W3 = """mutation W3($patientId: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $patientId, input: $input) { id name relationship phone }
}"""

W4 = """query W4($first: Int!) {
  auditEvents(first: $first) {
    edges { node { id seq occurredAt actorKind actorId tokenId action resourceType resourceId patientId
                   fieldClasses fieldsRead outcome reason policyRule requestId clientAddress userAgent hash
                   prevHash } }
    pageInfo { hasNextPage endCursor }
  }
}"""

W5 = """query W5($first: Int!, $after: String) {
  followUpWorklist(scope: MINE, first: $first, after: $after) { nodes { id dueOn status patient { fullName phone } } }
}"""

W6 = """query W6($department: ID!, $from: Date!, $to: Date!) {
  freeSlots(departmentId: $department, from: $from, to: $to) { scheduleId start end capacity booked free }
}"""

DOCUMENTS = {"W0": W0, "W1": W1, "W2": W2, "W3": W3, "W4": W4, "W5": W5, "W6": W6}
TITLES = {
    "W0": "a signed-in { __typename }: the fixed cost of a request, no data (nurse)",
    "W1": "page of patients with 3 encrypted fields and contacts (nurse)",
    "W2": "one patient with contacts (nurse)",
    "W3": "contactCreate (nurse)",
    "W4": "page of 50 audit events (compliance officer)",
    "W5": "follow-up worklist of 50 tasks with patient names and phones (nurse)",
    "W6": "free slots of a 20-clinician department for a week (nurse)",
}
ACCOUNT = {"W0": "nurse", "W1": "nurse", "W2": "nurse", "W3": "nurse", "W4": "officer", "W5": "nurse", "W6": "nurse"}
COMPARED = ("W0", "W1", "W2", "W4", "W5", "W6")  # W3 creates a new row each time: its answers differ by design


@dataclass(frozen=True)
class Request:
    name: str  # W0..W6, also the operation name
    variables: dict
    # Variables sent in turn, one set a request (W3: a patient each); none: ``variables`` every time
    turns: tuple[dict, ...] = ()

    @property
    def body(self) -> bytes:
        return self._body(self.variables)

    @property
    def bodies(self) -> list[bytes]:
        """The bodies sent in turn (``body`` alone when the request has no turns)."""
        return [self._body(variables) for variables in self.turns] or [self.body]

    def _body(self, variables: dict) -> bytes:
        return orjson.dumps({"query": DOCUMENTS[self.name], "operationName": self.name, "variables": variables})

    @property
    def account(self) -> str:
        return ACCOUNT[self.name]


def w0() -> Request:
    return Request("W0", {})


def w1(after: str, first: int = 50) -> Request:
    return Request("W1", {"first": first, "after": after})


def w2(patient_id: str) -> Request:
    return Request("W2", {"id": patient_id})


W3_CONTACT = {"name": "Bench Contact", "relationship": "FRIEND", "phone": "+8613912345678", "isEmergency": True}


def w3(patient_ids: list[str]) -> Request:
    """A contact for each patient in turn: a file takes at most 50 contacts (``resolvers.contact.MAX_CONTACTS``), so
    a run's thousands of contactCreate calls are spread over enough files to stay under it, each as a real one."""
    turns = tuple({"patientId": patient_id, "input": W3_CONTACT} for patient_id in patient_ids)
    return Request("W3", turns[0], turns)


def w4(first: int = 50) -> Request:
    return Request("W4", {"first": first})


def w5(first: int = 50, after: str | None = None) -> Request:
    """The first page (the one measured), or the page after a cursor (the whole list is checked)."""
    return Request("W5", {"first": first} if after is None else {"first": first, "after": after})


def w6(department_id: str, first_day: str, last_day: str) -> Request:
    """A department's free slots, local days ``first_day`` to ``last_day`` (only slots with a free place)."""
    return Request("W6", {"department": department_id, "from": first_day, "to": last_day})
