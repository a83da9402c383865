"""The Tortoise configuration built from CARELOOP_DATABASE_URL."""

from __future__ import annotations

import asyncio

from core.db import keep_session, tortoise_config


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
