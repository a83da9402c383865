"""Field classes: which class each readable field of a record belongs to.

A role reads a field when the policy allows ``<object>.<class>: read`` for it and the row
lies within that role's reach (see ``scopes``). ``id`` belongs to no class: whoever can see
a row can see its id.
"""

from __future__ import annotations

IDENTITY = "identity"
CONTACT = "contact"
CLINICAL = "clinical"
NEEDS = "needs"
INTERNAL = "internal"  # staff-only labels: never shown to the patient or a partner
PATIENT_CLASSES = (IDENTITY, CONTACT, CLINICAL, NEEDS, INTERNAL)

PATIENT_FIELD_CLASS: dict[str, str] = {
    "full_name": IDENTITY,
    "sex": IDENTITY,
    "birth_date": IDENTITY,
    "occupation": IDENTITY,
    "national_id_type": IDENTITY,
    "national_id": IDENTITY,
    "status": IDENTITY,
    "segments": INTERNAL,
    "tags": INTERNAL,
    "department_id": IDENTITY,
    "created_at": IDENTITY,
    "updated_at": IDENTITY,
    "address": CONTACT,
    "phone": CONTACT,
    "alt_phone": CONTACT,
    "email": CONTACT,
    "preferred_channel": CONTACT,
    "preferred_language": CONTACT,
    "contact_consent": CONTACT,
    "contact_channels": CONTACT,
    "medical_history": CLINICAL,
    "diagnoses": CLINICAL,
    "allergies": CLINICAL,
    "current_medication": CLINICAL,
    "diet_preferences": NEEDS,
    "activity_preferences": NEEDS,
    "special_needs": NEEDS,
}

# Encrypted columns of each table: decrypted only when a query asks for them.
ENCRYPTED_FIELDS: dict[str, frozenset[str]] = {
    "patient": frozenset(
        {"national_id", "address", "phone", "alt_phone", "medical_history", "diagnoses", "allergies",
         "current_medication", "special_needs"}
    ),
    "contact": frozenset({"phone", "notes"}),
}

