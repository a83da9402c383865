"""The Tortoise configuration built from CARELOOP_DATABASE_URL."""

from __future__ import annotations

import asyncio

import pytest

from app.leader import Leadership
from core.db import keep_session, tortoise_config
from core.settings import load_settings


def test_postgres_pool_keeps_url_options_and_skips_the_session_reset() -> None:
    connection = tortoise_config("postgres://careloop_app:secret@db.internal:6543/careloop?minsize=2&maxsize=7")[
        "connections"]["default"]
    assert connection["engine"] == "core.backends.asyncpg"
    credentials = connection["credentials"]
    assert (credentials["host"], credentials["port"], credentials["user"], credentials["database"]) == (
        "db.internal", 6543, "careloop_app", "careloop")
    assert (credentials["minsize"], credentials["maxsize"]) == ("2", "7")
    assert credentials["reset"] is keep_session
    assert asyncio.run(keep_session(object())) is None


def test_sqlite_url_keeps_its_file_and_gets_our_engine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite://{tmp_path}/sub/careloop.sqlite3"
    connection = tortoise_config(url)["connections"]["default"]
    assert connection["engine"] == "core.backends.sqlite"
    assert connection["credentials"]["file_path"] == f"{tmp_path}/sub/careloop.sqlite3"
    assert (tmp_path / "sub").is_dir()


@pytest.mark.parametrize("url", ["asyncpg://careloop@db.internal/careloop", "psycopg://careloop@db.internal/careloop",
                                 "mysql://careloop@db.internal/careloop", "careloop.sqlite3"])
def test_a_database_url_careloop_does_not_speak_stops_the_process(url: str) -> None:
    """Found in review of the leader election: Tortoise also takes asyncpg:// and psycopg:// for PostgreSQL, and
    careloop opened the database with such a URL, but the leader election took anything not postgres:// for SQLite
    and led every job on every node through a lock file of its own (each node ran every sweep), and a backup refused
    it only when asked. Now the process does not start."""
    with pytest.raises(SystemExit, match="CARELOOP_DATABASE_URL"):
        load_settings({"CARELOOP_DATABASE_URL": url})
    with pytest.raises(ValueError):
        Leadership(url)


@pytest.mark.parametrize("url", ["sqlite:///var/lib/careloop/careloop.sqlite3",
                                 "postgres://careloop@db.internal/careloop", "postgresql://careloop@db.internal/x"])
def test_the_database_urls_careloop_speaks_are_taken(url: str) -> None:
    assert load_settings({"CARELOOP_DATABASE_URL": url}).database_url == url
