"""Field classes: which class each readable field of a record belongs to.

A role reads a field when the policy allows ``<object>.<class>: read`` for it and the row
lies within that role's reach (see ``scopes``). ``id`` belongs to no class: whoever can see
a row can see its id. Nor does a record's ``version`` (the compare-and-set counter an update sends back): it says
nothing of the patient, and whoever may change a record needs it to send back: appointments, visits, care plans and
follow-up tasks answer it as they answer ``id`` (``version: Int!``), whichever classes of the file the caller reads.
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
    "contact_purposes": CONTACT,
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
    "visit": frozenset({"reason", "summary", "outcome", "treatment_plan", "medication_guidance", "rehabilitation",
                        "precautions", "feedback", "internal_note"}),
    "visit_code": frozenset({"code", "text"}),
    "flag": frozenset({"detail"}),
    "care_plan": frozenset({"title", "goals"}),
    "care_plan_activity": frozenset({"description"}),
    "follow_up_task": frozenset({"notes"}),
    "follow_up_attempt": frozenset({"note"}),
    "appointment": frozenset({"reason"}),
    "communication": frozenset({"subject", "body", "note"}),
}

# The care journey is read under the classes of its patient's file: whoever reads a patient's
# clinical class reads the clinical part of their visits, plans and follow-up, and no one else.
VISIT_FIELD_CLASS: dict[str, str] = {
    **dict.fromkeys(("kind", "status", "planned_at", "arrived_at", "started_at", "ended_at", "cancelled_at",
                     "revisit_on", "created_at", "updated_at"), IDENTITY),
    **dict.fromkeys(("reason", "summary", "outcome", "treatment_plan", "medication_guidance", "rehabilitation",
                     "precautions", "feedback", "codes"), CLINICAL),
    "internal_note": INTERNAL,
}

# A flag's kind and period are identity (everyone who looks the patient up sees that an alert stands);
# its detail is read under the class of what it says.
FLAG_DETAIL_CLASS: dict[str, str] = {
    "vip": INTERNAL,
    "difficult_payer": INTERNAL,
    "special_needs": NEEDS,
    "fall_risk": NEEDS,
    "allergy": CLINICAL,
    "clinical_alert": CLINICAL,
}

CARE_PLAN_FIELD_CLASS: dict[str, str] = {
    **dict.fromkeys(("status", "starts_on", "ends_on", "created_at", "updated_at"), IDENTITY),
    **dict.fromkeys(("title", "goals", "activities"), CLINICAL),
}

FOLLOW_UP_FIELD_CLASS: dict[str, str] = {
    **dict.fromkeys(("due_on", "status", "completed_at", "created_at", "updated_at"), IDENTITY),
    **dict.fromkeys(("reached", "condition", "needs_help", "satisfaction", "notes", "attempts"), CLINICAL),
}

# An appointment's when, where and state are identity (the desk books and greets); why the patient comes is
# clinical, sealed like a visit's reason.
APPOINTMENT_FIELD_CLASS: dict[str, str] = {
    **dict.fromkeys(("slot_start", "slot_end", "status", "channel", "cancellation_reason", "arrived_at",
                     "cancelled_at", "created_at", "updated_at", "schedule", "visit",
                     "rescheduled_from"), IDENTITY),
    "reason": CLINICAL,
}
