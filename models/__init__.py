"""Tortoise models: one module per domain noun. Imports only ``core``."""

from models.attachment import Attachment
from models.audit import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent
from models.care_plan import CarePlan, CarePlanActivity
from models.consent import PartnerConsent
from models.contact import Contact
from models.emergency_access import EmergencyAccess
from models.flag import Flag
from models.follow_up import FollowUpAttempt, FollowUpRule, FollowUpTask
from models.improvement import ImprovementItem, ImprovementTicket
from models.institution import Department, Institution, InstitutionKey
from models.notification import Notification
from models.partner import Partner, PartnerClient, PartnerDocument, PartnerGrant, PartnerToken, PartnerUsage
from models.patient import CareTeamMember, Patient
from models.patient_account import PatientAccount, PatientInvitation, PatientSession
from models.role_grant import RoleGrant
from models.sla import BusinessCalendar, SlaPolicy
from models.staff import DepartmentMembership, RoleAssignment, Session, Staff
from models.ticket import Ticket, TicketEvent
from models.visit import ServiceItem, Visit, VisitCode, VisitStaff

__all__ = [
    "Attachment",
    "AuditArchive",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "BusinessCalendar",
    "CarePlan",
    "CarePlanActivity",
    "CareTeamMember",
    "Contact",
    "Department",
    "DepartmentMembership",
    "EmergencyAccess",
    "Flag",
    "FollowUpAttempt",
    "FollowUpRule",
    "FollowUpTask",
    "ImprovementItem",
    "ImprovementTicket",
    "Institution",
    "InstitutionKey",
    "Notification",
    "Partner",
    "PartnerClient",
    "PartnerConsent",
    "PartnerDocument",
    "PartnerGrant",
    "PartnerToken",
    "PartnerUsage",
    "Patient",
    "PatientAccount",
    "PatientInvitation",
    "PatientSession",
    "RoleAssignment",
    "RoleGrant",
    "ServiceItem",
    "Session",
    "SlaPolicy",
    "Staff",
    "Ticket",
    "TicketEvent",
    "Visit",
    "VisitCode",
    "VisitStaff",
]
