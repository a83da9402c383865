from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pypdf

from core.contract_document import ContractDocument, DocumentItem, render

ROOT = Path(__file__).resolve().parents[2]

ITEMS = (
    DocumentItem("HC-01", "居家护理上门服务", "护士每次上门 60 分钟：测量血压、血糖，指导用药。", 8, "weekly",
                 "CNY 120.00", "CNY 960.00"),
    DocumentItem("BATH", "Bathing assistance", "Two carers, 45 minutes, with a shower chair.", 4, "per_visit",
                 "CNY 80.50", "CNY 322.00", delivered_by_partner=True),
)
DOCUMENT = ContractDocument(
    institution="阳光颐养院 Sunshine Care Home", number="HT-2024-0007",
    title="居家养老服务合同 Home care service contract", version=1, client="张秀英", start_on=date(2024, 3, 1),
    end_on=date(2025, 2, 28), effective_on=date(2024, 3, 1),
    billing_period="monthly", period_total="CNY 1282.00", deposit="CNY 3000.00", notice_days=30, auto_renew=True,
    rights_duties="甲方按约定标准提供服务；乙方按期支付费用。\n\nThe client may end the contract with 30 days' notice.",
    items=ITEMS, guarantor="李明 (son)", partner="Sunrise Home Care", clauses="低盐饮食 <diet> & no stairs",
)


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_a_pdf() -> None:
    data = render(DOCUMENT)
    assert data.startswith(b"%PDF-")
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) >= 1


def test_same_input_same_bytes() -> None:
    assert render(DOCUMENT) == render(DOCUMENT)
    assert render(replace(DOCUMENT)) == render(DOCUMENT)


def test_hash_is_stable_across_processes() -> None:
    """Another interpreter (another hash seed, another time zone, another day) renders the same bytes."""
    script = ("import hashlib, sys; sys.path.insert(0, 'tests/core'); import test_contract_document as t; "
              "print(hashlib.sha256(t.render(t.DOCUMENT)).hexdigest())")
    outputs = set()
    for seed, zone in (("1", "UTC"), ("4242", "Asia/Shanghai")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": zone, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True, timeout=120)
        outputs.add(done.stdout.strip())
    assert outputs == {hashlib.sha256(render(DOCUMENT)).hexdigest()}


def test_no_clock_or_random_id_in_the_file() -> None:
    data = render(DOCUMENT)
    assert str(date.today().year).encode() + b"0" not in data.split(b"/CreationDate")[-1][:40]
    info = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert info is not None and info.title == "HT-2024-0007 v1"
    assert "张秀英" not in str(dict(info))  # the metadata names no one


def test_any_change_changes_the_hash() -> None:
    base = hashlib.sha256(render(DOCUMENT)).hexdigest()
    changed = [
        replace(DOCUMENT, deposit="CNY 3000.01"),
        replace(DOCUMENT, version=2, change_summary="押金调整 deposit changed"),
        replace(DOCUMENT, items=(replace(ITEMS[0], quantity=9), ITEMS[1])),
        replace(DOCUMENT, auto_renew=False),
        replace(DOCUMENT, clauses=None),
    ]
    hashes = {hashlib.sha256(render(d)).hexdigest() for d in changed}
    assert base not in hashes and len(hashes) == len(changed)


def test_chinese_and_english_text_read_back() -> None:
    text = text_of(render(DOCUMENT))
    for expected in ("阳光颐养院", "Sunshine Care Home", "居家养老服务合同", "HT-2024-0007", "张秀英", "李明 (son)",
                     "Sunrise Home Care", "2024-03-01", "2025-02-28", "居家护理上门服务", "Bathing assistance",
                     "HC-01", "CNY 120.00", "CNY 80.50", "CNY 1282.00", "CNY 3000.00", "30 天 days", "是 yes",
                     "每周 weekly", "每次 per visit", "按月 monthly", "测量血压", "shower chair",
                     "甲方按约定标准提供服务", "30 days' notice", "低盐饮食 <diet> & no stairs", "担保人 Guarantor",
                     "合作服务方 Care partner"):
        assert expected in text, expected
    assert "变更说明" not in text  # version 1 has no amendment


def test_amendment_states_what_changed() -> None:
    text = text_of(render(replace(DOCUMENT, version=3, change_summary="自 2024-09-01 起增加助浴次数。")))
    assert "变更说明 Amendment" in text and "增加助浴次数" in text and "Version 3" in text


def test_without_guarantor_or_partner_only_two_parties_sign() -> None:
    document = replace(DOCUMENT, guarantor=None, partner=None)
    assert document.parties == ("institution", "client")
    assert DOCUMENT.parties == ("institution", "client", "guarantor", "partner")
    assert "担保人 Guarantor" not in text_of(render(document))


def test_long_texts_flow_over_pages() -> None:
    long_text = "\n\n".join(f"第{n}条 乙方应当配合服务。Clause {n}: the client keeps the appointment times. " * 6
                            for n in range(1, 40))
    items = tuple(replace(ITEMS[0], code=f"C{n:03}", name=f"项目 item {n}") for n in range(30))
    data = render(replace(DOCUMENT, rights_duties=long_text + "\n\nEND-OF-DUTIES", items=items))
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) > 3
    last = reader.pages[-1].extract_text()
    assert "签署 Signatures" in last or "签署 Signatures" in reader.pages[-2].extract_text()
    assert "END-OF-DUTIES" in text_of(data) and "C029" in text_of(data)
    assert all(page.extract_text().strip() for page in reader.pages)


def test_control_characters_and_odd_text_do_not_break_rendering() -> None:
    data = render(replace(DOCUMENT, clauses="tab\there\x00\x07 bell, 🙂 emoji, Ünïcödé, 한국어, русский\r\nnext line"))
    text = text_of(data)
    assert "Ünïcödé" in text and "next line" in text
