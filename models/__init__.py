"""Tortoise models: one module per domain noun. Imports only ``core``."""

from models.attachment import Attachment
from models.audit import AuditChainHead, AuditCheckpoint, AuditEvent
from models.contact import Contact
from models.emergency_access import EmergencyAccess
from models.improvement import ImprovementItem, ImprovementTicket
from models.institution import Department, Institution, InstitutionKey
from models.notification import Notification
from models.patient import CareTeamMember, Patient
from models.sla import BusinessCalendar, SlaPolicy
from models.staff import DepartmentMembership, RoleAssignment, Session, Staff
from models.ticket import Ticket, TicketEvent

__all__ = [
    "Attachment",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "BusinessCalendar",
    "CareTeamMember",
    "Contact",
    "Department",
    "DepartmentMembership",
    "EmergencyAccess",
    "ImprovementItem",
    "ImprovementTicket",
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
