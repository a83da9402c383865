"""Tortoise models: one module per domain noun. Imports only ``core``."""

from models.audit import AuditChainHead, AuditEvent
from models.contact import Contact
from models.institution import Department, Institution, InstitutionKey
from models.patient import CareTeamMember, Patient
from models.staff import DepartmentMembership, RoleAssignment, Session, Staff

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "CareTeamMember",
    "Contact",
    "Department",
    "DepartmentMembership",
    "Institution",
    "InstitutionKey",
    "Patient",
    "RoleAssignment",
    "Session",
    "Staff",
]
