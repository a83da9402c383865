"""A contract version rendered to PDF: the document the parties sign.

Input is a plain frozen dataclass (no models here): the caller formats money (exact decimal strings with their
currency) and passes names as they should read. The same input always renders to the same bytes
(``invariant=1``: no creation date, no random document id), so a document's SHA-256 identifies what was signed.
Each version is sent with a ``nonce`` (random, kept nowhere but in the stored PDF's metadata): staff who may read
the digest but not the fees could otherwise render guesses until one matched it (found in review).

Labels are bilingual (Chinese, English). Text runs that Latin-1 cannot show are set in reportlab's CID font
``STSong-Light`` (Adobe's Chinese font pack, not embedded), the rest in Helvetica, so Chinese and English text both
read back. Long texts (rights and duties, clauses, service standards) are paragraphs that flow over as many pages as
they need, and the items table repeats its header on each page.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"

FREQUENCIES = {"daily": "每日 daily", "weekly": "每周 weekly", "per_visit": "每次 per visit",
               "monthly": "每月 monthly"}
BILLING_PERIODS = {"monthly": "按月 monthly", "quarterly": "按季度 quarterly", "yearly": "按年 yearly"}
PARTY_LABELS = {"institution": "服务机构 Institution", "client": "服务对象 Client",
                "guarantor": "担保人 Guarantor", "partner": "合作服务方 Care partner"}

_REGISTERED = False
_LATIN = re.compile(r"[\x20-\x7e\xa0-\xff]+")  # shown by Helvetica (WinAnsi); anything else by the CID font


@dataclass(frozen=True)
class DocumentItem:
    code: str
    name: str
    standard: str | None  # what is delivered, how, by whom
    quantity: int  # units per billing period
    frequency: str  # daily, weekly, per_visit, monthly (or a label)
    unit_price: str  # formatted money, e.g. "CNY 120.00"
    period_total: str
    delivered_by_partner: bool = False


@dataclass(frozen=True)
class ContractDocument:
    institution: str
    number: str
    title: str
    version: int
    client: str
    start_on: date
    end_on: date
    effective_on: date
    billing_period: str  # monthly, quarterly, yearly
    period_total: str  # formatted money
    deposit: str  # formatted money
    notice_days: int
    auto_renew: bool
    rights_duties: str
    items: tuple[DocumentItem, ...] = ()
    guarantor: str | None = None
    partner: str | None = None
    clauses: str | None = None
    change_summary: str | None = None  # an amendment: what changed
    nonce: str = ""  # random per version sent: the bytes cannot be rebuilt from what the API shows

    @property
    def parties(self) -> tuple[str, ...]:
        """Who signs, in order: the institution, the client, and the guarantor and the partner when named."""
        return ("institution", "client") + (("guarantor",) if self.guarantor else ()) + \
            (("partner",) if self.partner else ())


def render(document: ContractDocument) -> bytes:
    """The PDF of a contract version; the same ``document`` gives the same bytes."""
    _register_fonts()
    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer, pagesize=A4, invariant=1, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
        bottomMargin=20 * mm, title=f"{document.number} v{document.version}", author="careloop",
        creator="careloop", producer="careloop", subject="", keywords=document.nonce)
    footer = f"{_plain(document.number)} · v{document.version}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(LATIN_FONT, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(18 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"{doc.page}")
        canvas.restoreState()

    template.build(_story(document), onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


# -- the story ---------------------------------------------------------------------------------------------------

_BODY = ParagraphStyle("body", fontName=LATIN_FONT, fontSize=9.5, leading=14, wordWrap="CJK", spaceAfter=3)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8.5, leading=12, spaceAfter=0)
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=16, leading=22, alignment=1, spaceAfter=4)
_SUBTITLE = ParagraphStyle("subtitle", parent=_BODY, alignment=1, textColor=colors.grey, spaceAfter=10)
_HEADING = ParagraphStyle("heading", parent=_BODY, fontSize=11.5, leading=16, spaceBefore=10, spaceAfter=4)
_LINE = ParagraphStyle("line", parent=_BODY, spaceAfter=0)  # a line of a block that more lines follow


def _story(d: ContractDocument) -> list[Flowable]:
    story: list[Flowable] = [
        _para(d.institution, _SUBTITLE),
        _para(d.title, _TITLE, bold=True),
        _para(f"合同编号 Contract no. {d.number} · 版本 Version {d.version}", _SUBTITLE),
    ]
    if d.change_summary:
        story += [_para("变更说明 Amendment", _HEADING, bold=True), *_paras(d.change_summary)]
    parties = [("服务机构 Institution", d.institution), ("服务对象 Client", d.client)]
    if d.guarantor:
        parties.append(("担保人 Guarantor", d.guarantor))
    if d.partner:
        parties.append(("合作服务方 Care partner", d.partner))
    story += [_para("合同各方 Parties", _HEADING, bold=True), _pairs(parties)]
    terms = [
        ("合同期限 Term", f"{d.start_on.isoformat()} – {d.end_on.isoformat()}"),
        ("本版本生效日期 Effective", d.effective_on.isoformat()),
        ("结算周期 Billing period", BILLING_PERIODS.get(d.billing_period, d.billing_period)),
        ("每期合计 Total per period", d.period_total),
        ("押金 Deposit", d.deposit),
        ("提前通知期 Notice period", f"{d.notice_days} 天 days"),
        ("自动续约 Auto-renewal", "是 yes" if d.auto_renew else "否 no"),
    ]
    story += [_para("期限与费用 Term and fees", _HEADING, bold=True), _pairs(terms)]
    story += [_para("服务项目 Services", _HEADING, bold=True), *_items(d)]
    standards = [item for item in d.items if item.standard]
    if standards:
        story.append(_para("服务标准 Service standards", _HEADING, bold=True))
        for item in standards:
            story += [_para(f"{item.code} {item.name}", _BODY, bold=True), *_paras(item.standard or "")]
    story += [_para("双方权利与义务 Rights and duties", _HEADING, bold=True), *_paras(d.rights_duties)]
    if d.clauses:
        story += [_para("特别约定 Special clauses", _HEADING, bold=True), *_paras(d.clauses)]
    story += [_para("签署 Signatures", _HEADING, bold=True), _signatures(d)]
    return story


def _pairs(rows: list[tuple[str, str]]) -> Table:
    table = Table([[_para(label, _SMALL, bold=True), _para(value, _BODY)] for label, value in rows],
                  colWidths=[52 * mm, None])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                               ("TOPPADDING", (0, 0), (-1, -1), 2)]))
    return table


def _items(d: ContractDocument) -> list[Flowable]:
    if not d.items:
        return [_para("（无 none）", _BODY)]
    header = [_para(text, _SMALL, bold=True) for text in
              ("编号\nCode", "项目\nService", "数量\nQty", "频次\nFrequency", "单价\nUnit price", "每期\nPer period")]
    rows = [header]
    for item in d.items:
        name = item.name + (" *" if item.delivered_by_partner else "")
        rows.append([_para(item.code, _SMALL), _para(name, _SMALL), _para(str(item.quantity), _SMALL),
                     _para(FREQUENCIES.get(item.frequency, item.frequency), _SMALL), _para(item.unit_price, _SMALL),
                     _para(item.period_total, _SMALL)])
    rows.append([_para("", _SMALL), _para("合计 Total", _SMALL, bold=True), _para("", _SMALL), _para("", _SMALL),
                 _para("", _SMALL), _para(d.period_total, _SMALL, bold=True)])
    table = Table(rows, colWidths=[22 * mm, 48 * mm, 14 * mm, 26 * mm, 32 * mm, 32 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.lightgrey),
    ]))
    flowables: list[Flowable] = [table]
    if any(item.delivered_by_partner for item in d.items):
        flowables.append(_para("* 由合作服务方提供 delivered by the care partner", _SMALL))
    return flowables


def _signatures(d: ContractDocument) -> Table:
    names = {"institution": d.institution, "client": d.client, "guarantor": d.guarantor or "",
             "partner": d.partner or ""}
    rows = [[_para(PARTY_LABELS.get(party, party), _SMALL, bold=True), _para(names.get(party, ""), _SMALL),
             _para("签字 Signature: ________________  日期 Date: __________", _SMALL)] for party in d.parties]
    table = Table(rows, colWidths=[40 * mm, 50 * mm, None])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 10)]))
    return KeepTogether([table])


# -- text ----------------------------------------------------------------------------------------------------------


def _register_fonts() -> None:
    global _REGISTERED
    if not _REGISTERED:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _REGISTERED = True


def _plain(text: str) -> str:
    """Text without control characters (tabs become spaces; newlines are kept for the caller to split on)."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn"))


def _markup(text: str, bold: bool = False) -> str:
    """Paragraph markup of plain text: escaped, each run in a font that has its glyphs, newlines as breaks."""
    latin = LATIN_BOLD if bold else LATIN_FONT
    parts: list[str] = []
    position = 0
    text = _plain(text)
    for match in _LATIN.finditer(text):
        if match.start() > position:
            parts.append(_cjk(text[position:match.start()]))
        parts.append(f'<font face="{latin}">{escape(match.group())}</font>')
        position = match.end()
    if position < len(text):
        parts.append(_cjk(text[position:]))
    return "".join(parts)


def _cjk(run: str) -> str:
    lines = run.split("\n")
    return "<br/>".join(f'<font face="{CJK_FONT}">{escape(line)}</font>' if line else "" for line in lines)


def _para(text: str, style: ParagraphStyle, bold: bool = False) -> Paragraph:
    return Paragraph(_markup(text, bold), style)


def _paras(text: str) -> list[Flowable]:
    """A long text as paragraphs (split at blank lines; single newlines kept as line breaks). Each line is a
    paragraph of its own, the block's last one spaced after: one paragraph of many short lines flowing over many
    pages is laid out again at every page break, so a 20,000-character text of one-character lines took 40 seconds
    of CPU to render (found in review); line by line it is linear."""
    out: list[Flowable] = []
    for block in re.split(r"\n\s*\n", _plain(text)):
        lines = block.strip("\n").split("\n") if block.strip() else []
        out += [_para(line, _BODY if n == len(lines) - 1 else _LINE) for n, line in enumerate(lines)]
    return out or [Spacer(0, 0)]
