"""The committed schema.graphql is the front-end teams' contract: it must match the code."""

from pathlib import Path

from core.settings import Limits
from schema.root import build_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_sdl_matches_the_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == str(build_schema(Limits(), production=False)) + "\n", (
        "schema.graphql is stale: run `make schema` and commit it"
    )


def test_schema_is_the_same_in_production() -> None:
    assert str(build_schema(Limits(), production=True)) == str(build_schema(Limits(), production=False))
