"""The container image, the compose file, the systemd unit and the operations guide say what the code does:
no setting they name is unknown to careloop (a renamed variable fails here, not in production), the image runs
as an unprivileged user with a health check, and the master key is a secret, never an environment variable."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from core.settings import Limits

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
UNIT = ROOT / "docs" / "deploy" / "careloop.service"
DEPLOY_FILES = [DOCKERFILE, COMPOSE, *sorted((ROOT / "docs" / "deploy").iterdir()), ROOT / "docs" / "operations.md",
                ROOT / "README.md"]
VARIABLE = re.compile(r"\bCARELOOP_[A-Z0-9_]*[A-Z0-9]\b")
MINE = {"CARELOOP_TRUSTED_PROXIES", "CARELOOP_LOG_FORMAT", "CARELOOP_METRICS_PORT", "CARELOOP_METRICS_HOST"}


def known_variables() -> set[str]:
    """Every CARELOOP_* variable careloop reads: named in full in the settings and the app, through
    ``_int(env, "NAME", ...)``, or a limit (CARELOOP_LIMIT_<field>)."""
    sources = [ROOT / "core" / "settings.py", ROOT / "schema" / "compiled" / "executor.py",
               *sorted((ROOT / "app").glob("*.py"))]
    names: set[str] = set()
    for source in sources:
        text = source.read_text()
        names |= set(VARIABLE.findall(text))
        names |= {f"CARELOOP_{name}" for name in re.findall(r'_int\(env, "([A-Z0-9_]+)"', text)}
    names |= {f"CARELOOP_LIMIT_{f.name.upper()}" for f in dataclasses.fields(Limits)}
    return names


def final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[-1]


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: p.name)
def test_every_variable_named_is_a_setting(path: Path) -> None:
    known = known_variables()
    if path.name == "README.md":  # its Tests section also names what the test suite reads
        known |= {name for test in ROOT.glob("tests/**/*.py") for name in VARIABLE.findall(test.read_text())}
    unknown = set(VARIABLE.findall(path.read_text())) - known
    assert not unknown, f"{path.name} names settings careloop does not read: {sorted(unknown)}"


def test_my_settings_are_read_and_documented() -> None:
    assert known_variables() >= MINE
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert all(name in guide for name in MINE)


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    stage = final_stage(DOCKERFILE.read_text())
    assert stage.startswith("python:3.11-slim")
    users = re.findall(r"^USER\s+(\S+)", stage, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*?CMD (.*)$", stage, flags=re.MULTILINE | re.DOTALL)
    assert health and "/healthz" in health.group(1)
    assert re.search(r"^ENTRYPOINT \[\"careloop\"\]", stage, flags=re.MULTILINE)


def test_the_image_has_no_dev_tools_and_no_key() -> None:
    dockerfile = DOCKERFILE.read_text()
    installs = re.findall(r"pip install (.*)", dockerfile)
    assert installs and not any("dev" in line or "-e " in line for line in installs)
    assert "CARELOOP_MASTER_KEY" not in dockerfile
    assert not re.search(r"^COPY (\.|tests|var|\.venv)\b", dockerfile, flags=re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "secrets", "*.key", "tests"} <= set(ignored)


def test_compose_keeps_the_key_a_secret_and_trusts_only_its_proxy() -> None:
    compose = COMPOSE.read_text()
    assert "CARELOOP_MASTER_KEY" not in compose
    target = re.search(r"target: (\S+)", compose)
    assert target and f"CARELOOP_KEY_FILE: /run/secrets/{target.group(1)}" in compose
    assert re.search(r"image: postgres:\d+", compose)
    assert "CARELOOP_DATABASE_URL: postgres://" in compose
    proxy = re.search(r"ipv4_address: (\S+)", compose)
    assert proxy and f"CARELOOP_TRUSTED_PROXIES: {proxy.group(1)}" in compose
    assert re.search(r"CARELOOP_METRICS_PORT: \"(\d+)\"", compose)
    assert "9464:" not in compose  # the metrics port is never published


def test_the_unit_runs_unprivileged_with_the_key_as_a_credential() -> None:
    unit = UNIT.read_text()
    user = re.search(r"^User=(\S+)", unit, flags=re.MULTILINE)
    assert user and user.group(1) not in ("root", "0")
    assert re.search(r"^ExecStart=\S*careloop serve", unit, flags=re.MULTILINE)
    assert "LoadCredential=master.key:" in unit and "CARELOOP_KEY_FILE=%d/master.key" in unit
    assert "CARELOOP_MASTER_KEY" not in unit
