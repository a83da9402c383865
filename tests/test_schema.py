"""The committed schema.graphql is the front-end teams' contract: it must match the code."""

from pathlib import Path

import pytest

from core.settings import Limits
from schema.common import FieldSource
from schema.root import build_schema

ROOT = Path(__file__).resolve().parent.parent


def test_committed_sdl_matches_the_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == str(build_schema(Limits(), production=False)) + "\n", (
        "schema.graphql is stale: run `make schema` and commit it"
    )


def test_schema_is_the_same_in_production() -> None:
    assert str(build_schema(Limits(), production=True)) == str(build_schema(Limits(), production=False))


def test_a_field_source_refuses_a_field_named_like_one_of_its_attributes() -> None:
    """Each of a FieldSource's fields becomes a property; one named like a method or slot would replace it."""
    with pytest.raises(TypeError, match="both a field and an attribute"):
        type("Clash", (FieldSource,), {"__slots__": (), "fields": frozenset({"read"})})
