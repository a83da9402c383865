"""A patient's access report for people: a PDF (reportlab) and a CSV (the csv module).

Input is a plain frozen dataclass of words already chosen by the caller (``resolvers.audit_words``): names,
roles, partners, local times and plain actions. No column name, no policy line and never a value of patient
data: the patient is named by their file's id. Like a contract's document (``core.contract_document``, whose
text handling this reuses: Helvetica for Latin runs, the CID font STSong-Light for Chinese), the same input
renders to the same bytes (``invariant=1``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Table, TableStyle

from core.contract_document import LATIN_FONT, _para, _register_fonts
from core.spreadsheet import safe_cell

LABELS = {
    "title": ("Access report", "访问报告"), "patient": ("Patient file", "患者档案"),
    "institution": ("Institution", "机构"), "period": ("Period", "期间"), "zone": ("Times in", "时区"),
    "made": ("Made", "生成时间"), "people": ("Who dealt with the file", "访问人员"),
    "events": ("Every access", "每次访问"), "none": ("No access in the period.", "期间内无访问。"),
    "time": ("Time", "时间"), "who": ("Who", "人员"), "role": ("Role", "角色"), "partner": ("Partner", "合作方"),
    "action": ("Action", "操作"), "outcome": ("Outcome", "结果"), "what": ("What", "内容"),
    "fields": ("Fields", "字段"), "allowed_by": ("Allowed by", "依据"), "summary": ("In the period", "期间汇总"),
    "first": ("First", "首次"), "last": ("Last", "最近"),
}
CSV_COLUMNS = ("time", "who", "role", "partner", "action", "outcome", "what", "fields", "allowed_by")


@dataclass(frozen=True)
class PersonLine:
    who: str
    role: str
    partner: str
    summary: str  # "read 3 times, changed once, refused once"
    first: str  # local time
    last: str


@dataclass(frozen=True)
class EventLine:
    time: str  # local time
    who: str
    role: str
    partner: str
    action: str
    outcome: str
    what: str  # field classes in words
    fields: str  # fields in words
    allowed_by: str


@dataclass(frozen=True)
class AccessReportDocument:
    institution: str
    patient_id: str
    period: str  # "2026-01-01 00:00 – 2026-12-02 19:00", local
    zone: str  # the institution's zone, e.g. Asia/Shanghai
    made: str  # local time
    language: str  # "en" or "zh-CN"
    people: tuple[PersonLine, ...] = ()
    events: tuple[EventLine, ...] = ()

    def label(self, key: str) -> str:
        english, chinese = LABELS[key]
        return chinese if self.language == "zh-CN" else english


def render_csv(document: AccessReportDocument) -> str:
    """One line per access, with a header in the report's language; UTF-8 with a BOM so spreadsheets read it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([document.label(column) for column in CSV_COLUMNS])
    for event in document.events:
        writer.writerow([safe_cell(getattr(event, column)) for column in CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()


def render_pdf(document: AccessReportDocument) -> bytes:
    """The PDF of the report; the same ``document`` gives the same bytes."""
    _register_fonts()
    buffer = io.BytesIO()
    pagesize = landscape(A4)
    template = SimpleDocTemplate(
        buffer, pagesize=pagesize, invariant=1, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm,
        bottomMargin=16 * mm, title=document.label("title"), author="careloop", creator="careloop",
        producer="careloop", subject="", keywords="")
    footer = f"{document.label('title')} · {document.patient_id}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(LATIN_FONT, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(14 * mm, 8 * mm, footer if document.language != "zh-CN" else document.patient_id)
        canvas.drawRightString(pagesize[0] - 14 * mm, 8 * mm, f"{doc.page}")
        canvas.restoreState()

    template.build(_story(document), onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


_BODY = ParagraphStyle("report-body", fontName=LATIN_FONT, fontSize=9, leading=12, wordWrap="CJK")
_SMALL = ParagraphStyle("report-small", parent=_BODY, fontSize=7.5, leading=9.5)
_TITLE = ParagraphStyle("report-title", parent=_BODY, fontSize=15, leading=20, spaceAfter=6)
_HEADING = ParagraphStyle("report-heading", parent=_BODY, fontSize=11, leading=15, spaceBefore=8, spaceAfter=4)


def _story(d: AccessReportDocument) -> list[Flowable]:
    story: list[Flowable] = [_para(d.label("title"), _TITLE, bold=True)]
    facts = [("institution", d.institution), ("patient", d.patient_id), ("period", d.period), ("zone", d.zone),
             ("made", d.made)]
    story.append(_table([[_p(d.label(key), bold=True), _p(value)] for key, value in facts], [40 * mm, None]))
    story.append(_para(d.label("people"), _HEADING, bold=True))
    if not d.people:
        story.append(_para(d.label("none"), _BODY))
    else:
        head = [_p(d.label(k), bold=True) for k in ("who", "role", "partner", "summary", "first", "last")]
        rows = [[_p(p.who), _p(p.role), _p(p.partner), _p(p.summary), _p(p.first), _p(p.last)] for p in d.people]
        story.append(_table([head, *rows], [45 * mm, 35 * mm, 35 * mm, None, 38 * mm, 38 * mm], header=True))
    story.append(_para(d.label("events"), _HEADING, bold=True))
    if d.events:
        head = [_p(d.label(k), bold=True) for k in CSV_COLUMNS]
        rows = [[_p(getattr(e, k)) for k in CSV_COLUMNS] for e in d.events]
        widths = [30 * mm, 30 * mm, 24 * mm, 24 * mm, 22 * mm, 16 * mm, 30 * mm, None, 50 * mm]
        story.append(_table([head, *rows], widths, header=True))
    else:
        story.append(_para(d.label("none"), _BODY))
    return story


def _p(text: str, bold: bool = False) -> Paragraph:
    return _para(text, _SMALL, bold=bold)


def _table(rows: list[list[Flowable]], widths: list[float | None], header: bool = False) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style: list[tuple[object, ...]] = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 2),
             ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style += [("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                  ("GRID", (0, 0), (-1, -1), 0.25, colors.lightgrey)]
    table.setStyle(TableStyle(style))
    return table


