"""Column types that say what they hold."""

from __future__ import annotations

from typing import Any

from tortoise import fields


class EncryptedField(fields.BinaryField):
    """An AES-GCM envelope (see ``core.crypto``). Holds bytes: rows load without decrypting,
    and the access layer opens a field only when a query asks for it."""


class TagsField(fields.CharField):
    """A set of tags kept as ``|a|b|`` so that a tag filter is a plain SQL ``LIKE '%|a|%'``.

    Tags are validated to letters, digits and hyphens, so they never hold a wildcard.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("default", "|")
        super().__init__(**kwargs)


def tags_to_db(tags: list[str] | tuple[str, ...]) -> str:
    return "|" + "".join(f"{t}|" for t in sorted(set(tags)))


def tags_from_db(value: str) -> list[str]:
    return [t for t in value.split("|") if t]
