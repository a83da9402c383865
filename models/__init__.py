"""Tortoise models: one module per domain noun. Imports only ``core``."""

from models.audit import AuditChainHead, AuditEvent
from models.contact import Contact
from models.institution import Department, Institution, InstitutionKey
from models.patient import CareTeamMember, Patient
from models.staff import DepartmentMembership, RoleAssignment, Session, Staff
from models.ticket import BusinessCalendar, Notification, SlaPolicy, Ticket, TicketEvent

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "BusinessCalendar",
    "CareTeamMember",
    "Contact",
    "Department",
    "DepartmentMembership",
    "Institution",
    "InstitutionKey",
    "Notification",
    "Patient",
    "RoleAssignment",
    "Session",
    "SlaPolicy",
    "Staff",
    "Ticket",
    "TicketEvent",
]
