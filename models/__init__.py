"""Tortoise models: one module per domain noun. Imports only ``core``."""

from models.appointment import Appointment
from models.attachment import Attachment
from models.audit import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent, AuditPatientIndex
from models.campaign import Campaign
from models.care_plan import CarePlan, CarePlanActivity
from models.communication import Communication, DeliveryReport
from models.consent import PartnerConsent
from models.contact import Contact
from models.contract import Contract, ContractItem, ContractSignature, ContractVersion
from models.emergency_access import EmergencyAccess
from models.flag import Flag
from models.follow_up import FollowUpAttempt, FollowUpRule, FollowUpTask
from models.idempotency_key import IdempotencyKey
from models.improvement import ImprovementItem, ImprovementTicket
from models.institution import Department, Institution, InstitutionKey
from models.message_template import MessageTemplate
from models.messaging import MessageGateway, MessagingSettings
from models.notification import Notification
from models.partner import Partner, PartnerClient, PartnerDocument, PartnerGrant, PartnerToken, PartnerUsage
from models.password_reset import PasswordReset
from models.patient import CareTeamMember, Patient
from models.patient_account import PatientAccount, PatientInvitation, PatientSession
from models.questionnaire import Questionnaire
from models.questionnaire_response import QuestionnaireResponse, ResponseAnswer
from models.role_grant import RoleGrant
from models.schedule import Schedule, ScheduleException
from models.service_item import ServiceItem, ServiceItemPrice
from models.sign_in_throttle import SignInThrottle
from models.sign_in_window import SignInWindow
from models.sla import BusinessCalendar, SlaPolicy
from models.staff import DepartmentMembership, RoleAssignment, Session, Staff
from models.survey import SurveyInvitation, SurveySettings, SurveyTrigger
from models.ticket import Ticket, TicketEvent
from models.visit import Visit, VisitCode, VisitStaff

__all__ = [
    "Appointment",
    "Attachment",
    "AuditArchive",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditPatientIndex",
    "BusinessCalendar",
    "Campaign",
    "CarePlan",
    "CarePlanActivity",
    "CareTeamMember",
    "Communication",
    "Contact",
    "Contract",
    "ContractItem",
    "ContractSignature",
    "ContractVersion",
    "DeliveryReport",
    "Department",
    "DepartmentMembership",
    "EmergencyAccess",
    "Flag",
    "FollowUpAttempt",
    "FollowUpRule",
    "FollowUpTask",
    "IdempotencyKey",
    "ImprovementItem",
    "ImprovementTicket",
    "Institution",
    "InstitutionKey",
    "MessageGateway",
    "MessageTemplate",
    "MessagingSettings",
    "Notification",
    "Partner",
    "PartnerClient",
    "PartnerConsent",
    "PartnerDocument",
    "PartnerGrant",
    "PartnerToken",
    "PartnerUsage",
    "PasswordReset",
    "Patient",
    "PatientAccount",
    "PatientInvitation",
    "PatientSession",
    "Questionnaire",
    "QuestionnaireResponse",
    "ResponseAnswer",
    "RoleAssignment",
    "RoleGrant",
    "Schedule",
    "ScheduleException",
    "ServiceItem",
    "ServiceItemPrice",
    "Session",
    "SignInThrottle",
    "SignInWindow",
    "SlaPolicy",
    "Staff",
    "SurveyInvitation",
    "SurveySettings",
    "SurveyTrigger",
    "Ticket",
    "TicketEvent",
    "Visit",
    "VisitCode",
    "VisitStaff",
]
