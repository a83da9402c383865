"""Properties of the field encryption, blind indexes, token digests and input normalisation."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    DecryptionError,
    InstitutionKeys,
    MasterKey,
    cursor_aad,
    field_aad,
    new_data_key,
)
from core.errors import BadUserInput
from core.tokens import looks_like_token, new_token, token_digest
from core.validation import (
    clean_text,
    normalize_email,
    normalize_national_id,
    normalize_phone,
    normalize_tag,
    resident_id_check_digit,
)

keys32 = st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES)
uuids = st.uuids()
texts = st.text()  # any text, including astral characters and NUL
columns = st.sampled_from(["national_id", "address", "phone", "alt_phone", "medical_history", "diagnoses",
                           "allergies", "current_medication", "special_needs", "notes"])
tables = st.sampled_from(["patient", "contact"])
HEX64 = re.compile(r"[0-9a-f]{64}")


def keys_for(institution_id: uuid.UUID, data_key: bytes, version: int = 1) -> InstitutionKeys:
    keys = InstitutionKeys(institution_id)
    keys.add(version, data_key)
    return keys


@st.composite
def contexts(draw: st.DrawFn) -> tuple[uuid.UUID, str, str, uuid.UUID]:
    return draw(uuids), draw(tables), draw(columns), draw(uuids)


# -- sealing -----------------------------------------------------------------------------


@given(keys32, contexts(), texts)
def test_seal_open_round_trip(data_key: bytes, context: tuple, plaintext: str) -> None:
    keys = keys_for(context[0], data_key)
    aad = field_aad(*context)
    envelope = keys.seal(plaintext, aad)
    assert keys.open(envelope, aad) == plaintext


@given(keys32, contexts(), texts)
def test_sealing_twice_gives_different_envelopes(data_key: bytes, context: tuple, plaintext: str) -> None:
    keys = keys_for(context[0], data_key)
    aad = field_aad(*context)
    assert keys.seal(plaintext, aad) != keys.seal(plaintext, aad)


@given(keys32, contexts(), contexts(), texts)
def test_wrong_aad_does_not_open(data_key: bytes, context: tuple, other: tuple, plaintext: str) -> None:
    assume(other != context)
    keys = keys_for(context[0], data_key)
    envelope = keys.seal(plaintext, field_aad(*context))
    with pytest.raises(DecryptionError):
        keys.open(envelope, field_aad(*other))


@pytest.mark.parametrize("part", [0, 1, 2, 3])  # institution, table, column, row
@given(data_key=keys32, context=contexts(), plaintext=texts, other=contexts())
def test_each_part_of_the_context_binds(part: int, data_key: bytes, context: tuple, plaintext: str,
                                        other: tuple) -> None:
    moved = tuple(other[i] if i == part else context[i] for i in range(4))
    assume(moved != context)
    keys = keys_for(context[0], data_key)
    with pytest.raises(DecryptionError):
        keys.open(keys.seal(plaintext, field_aad(*context)), field_aad(*moved))


@given(keys32, contexts(), texts, st.data())
def test_tampered_byte_does_not_open(data_key: bytes, context: tuple, plaintext: str, data: st.DataObject) -> None:
    keys = keys_for(context[0], data_key)
    aad = field_aad(*context)
    envelope = bytearray(keys.seal(plaintext, aad))
    position = data.draw(st.integers(0, len(envelope) - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    envelope[position] ^= flip
    with pytest.raises(DecryptionError):
        keys.open(bytes(envelope), aad)


HEADER_AND_NONCE = 5 + 12


@given(keys32, contexts(), texts, st.data())
def test_truncated_envelope_does_not_open(data_key: bytes, context: tuple, plaintext: str,
                                          data: st.DataObject) -> None:
    keys = keys_for(context[0], data_key)
    aad = field_aad(*context)
    envelope = keys.seal(plaintext, aad)
    cut = data.draw(st.integers(0, len(envelope) - 1), label="length")
    with pytest.raises(DecryptionError):
        keys.open(envelope[:cut], aad)


@given(keys32, uuids, st.text(), texts)
def test_a_stable_seal_opens_and_is_the_same_each_time(data_key: bytes, institution_id: uuid.UUID, kind: str,
                                                       plaintext: str) -> None:
    """A list's cursor: the same position gives the same cursor, which opens as any envelope does."""
    keys = keys_for(institution_id, data_key)
    aad = cursor_aad(institution_id, kind)
    envelope = keys.seal_stable(plaintext.encode(), aad)
    assert envelope == keys.seal_stable(plaintext.encode(), aad)
    assert keys.open(envelope, aad) == plaintext


@given(keys32, uuids, st.text(), st.text(), texts, texts)
def test_a_stable_seals_nonce_differs_with_its_message(data_key: bytes, institution_id: uuid.UUID, kind: str,
                                                       other_kind: str, plaintext: str, other: str) -> None:
    """The nonce is a keyed hash of AAD and plaintext: only the same message repeats one (GCM must never reuse a
    nonce for another), and a message moved between AAD and plaintext is another."""
    assume((kind, plaintext) != (other_kind, other))
    keys = keys_for(institution_id, data_key)

    def nonce(kind: str, text: str) -> bytes:
        start = 5  # after the header (envelope version, key version)
        return keys.seal_stable(text.encode(), cursor_aad(institution_id, kind))[start:start + NONCE_BYTES]

    assert nonce(kind, plaintext) != nonce(other_kind, other)
    assert nonce("ab", "c") != nonce("a", "bc")


@given(keys32, uuids, uuids, st.text(), st.text(), texts)
def test_a_stable_seal_is_bound_to_institution_and_kind(data_key: bytes, institution_id: uuid.UUID,
                                                        other_id: uuid.UUID, kind: str, other_kind: str,
                                                        plaintext: str) -> None:
    assume((institution_id, kind) != (other_id, other_kind))
    keys = keys_for(institution_id, data_key)
    envelope = keys.seal_stable(plaintext.encode(), cursor_aad(institution_id, kind))
    with pytest.raises(DecryptionError):
        keys.open(envelope, cursor_aad(other_id, other_kind))


def test_envelope_cut_inside_the_nonce_does_not_open() -> None:
    """AESGCM refuses nonces under 8 bytes with ValueError: open must still say DecryptionError."""
    institution_id = uuid.uuid4()
    keys = keys_for(institution_id, new_data_key())
    aad = field_aad(institution_id, "patient", "diagnoses", uuid.uuid4())
    envelope = keys.seal("caries", aad)
    for cut in range(5, HEADER_AND_NONCE - 4):
        with pytest.raises(DecryptionError):
            keys.open(envelope[:cut], aad)


def test_wrapped_key_cut_inside_the_nonce_does_not_unwrap() -> None:
    institution_id, key = uuid.uuid4(), MasterKey(new_data_key())
    wrapped = key.wrap(new_data_key(), institution_id, 1)
    for cut in range(8):
        with pytest.raises(DecryptionError):
            key.unwrap(wrapped[:cut], institution_id, 1)


@given(keys32, keys32, contexts(), texts)
def test_another_data_key_does_not_open(data_key: bytes, other_key: bytes, context: tuple, plaintext: str) -> None:
    assume(data_key != other_key)
    aad = field_aad(*context)
    envelope = keys_for(context[0], data_key).seal(plaintext, aad)
    with pytest.raises(DecryptionError):
        keys_for(context[0], other_key).open(envelope, aad)


@given(keys32, keys32, contexts(), texts)
def test_old_key_versions_still_open_after_rotation(old: bytes, new: bytes, context: tuple, plaintext: str) -> None:
    keys = keys_for(context[0], old, version=1)
    aad = field_aad(*context)
    before = keys.seal(plaintext, aad)
    keys.add(2, new)
    after = keys.seal(plaintext, aad)
    assert (keys.open(before, aad), keys.open(after, aad)) == (plaintext, plaintext)
    assert after[1:5] == (2).to_bytes(4, "big")


# -- the master key ----------------------------------------------------------------------


@given(keys32, keys32, uuids, st.integers(1, 2**31))
def test_master_key_wraps_and_unwraps(master: bytes, data_key: bytes, institution_id: uuid.UUID,
                                      version: int) -> None:
    key = MasterKey(master)
    wrapped = key.wrap(data_key, institution_id, version)
    assert data_key not in wrapped
    assert key.unwrap(wrapped, institution_id, version) == data_key


@given(keys32, keys32, uuids, uuids, st.integers(1, 100), st.integers(1, 100))
def test_wrapped_key_is_bound_to_institution_and_version(master: bytes, data_key: bytes, institution_id: uuid.UUID,
                                                          other_id: uuid.UUID, version: int, other_version: int
                                                          ) -> None:
    assume((institution_id, version) != (other_id, other_version))
    key = MasterKey(master)
    with pytest.raises(DecryptionError):
        key.unwrap(key.wrap(data_key, institution_id, version), other_id, other_version)


@given(keys32, keys32, keys32, uuids)
def test_another_master_key_does_not_unwrap(master: bytes, other: bytes, data_key: bytes,
                                            institution_id: uuid.UUID) -> None:
    assume(master != other)
    wrapped = MasterKey(master).wrap(data_key, institution_id, 1)
    with pytest.raises(DecryptionError):
        MasterKey(other).unwrap(wrapped, institution_id, 1)


@given(st.binary(max_size=64).filter(lambda raw: len(raw) != KEY_BYTES))
def test_master_key_must_be_32_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(raw)


def test_master_key_from_base64_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        MasterKey.from_base64("not base64 at all!")


def test_placeholder_master_keys_are_recognised() -> None:
    assert MasterKey(b"\x00" * KEY_BYTES).is_placeholder
    assert MasterKey(b"changeme" * 4).is_placeholder
    assert not MasterKey(new_data_key()).is_placeholder


# -- blind indexes -----------------------------------------------------------------------


@given(keys32, uuids, st.sampled_from(["phone", "national_id"]), texts)
def test_blind_index_is_deterministic(data_key: bytes, institution_id: uuid.UUID, kind: str, value: str) -> None:
    first = keys_for(institution_id, data_key).blind_index(kind, value)
    again = keys_for(institution_id, data_key).blind_index(kind, value)
    assert first == again
    assert HEX64.fullmatch(first)


@given(keys32, keys32, uuids, uuids, texts)
def test_blind_index_differs_between_institutions(key_a: bytes, key_b: bytes, id_a: uuid.UUID, id_b: uuid.UUID,
                                                  value: str) -> None:
    assume(key_a != key_b)
    assert keys_for(id_a, key_a).blind_index("phone", value) != keys_for(id_b, key_b).blind_index("phone", value)


@given(keys32, uuids, texts, texts)
def test_blind_index_separates_values_and_kinds(data_key: bytes, institution_id: uuid.UUID, a: str, b: str) -> None:
    keys = keys_for(institution_id, data_key)
    assert keys.blind_index("phone", a) != keys.blind_index("national_id", a)
    assert (keys.blind_index("phone", a) == keys.blind_index("phone", b)) == (a == b)


@given(keys32, keys32, uuids, texts)
def test_blind_index_survives_key_rotation(old: bytes, new: bytes, institution_id: uuid.UUID, value: str) -> None:
    keys = keys_for(institution_id, old)
    before = keys.blind_index("phone", value)
    keys.add(2, new)
    assert keys.blind_index("phone", value) == before


# -- tokens ------------------------------------------------------------------------------


def test_new_tokens_have_the_documented_shape_and_are_unique() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"cl_[A-Za-z0-9_-]{43}", token) and looks_like_token(token) for token in tokens)


@given(st.one_of(st.text(max_size=80), st.text(alphabet="abcXYZ019_-", min_size=40, max_size=46).map("cl_".__add__)))
def test_looks_like_token_only_accepts_the_shape(value: str) -> None:
    assert looks_like_token(value) == bool(re.fullmatch(r"cl[pc]?_[A-Za-z0-9_-]{43}", value))


def test_looks_like_token_refuses_a_trailing_newline() -> None:
    assert not looks_like_token(new_token() + "\n")


@given(keys32, keys32, st.text(min_size=1))
def test_token_digest_is_keyed_and_deterministic(key: bytes, other_key: bytes, token: str) -> None:
    digest = token_digest(key, token)
    assert digest == token_digest(key, token)
    assert HEX64.fullmatch(digest)
    if other_key != key:
        assert token_digest(other_key, token) != digest


@given(keys32, st.text(min_size=1), st.text(min_size=1))
def test_token_digest_separates_tokens(key: bytes, a: str, b: str) -> None:
    assert (token_digest(key, a) == token_digest(key, b)) == (a == b)


# -- normalisation -----------------------------------------------------------------------

separators = st.sampled_from(["", " ", "-", "(", ")", " - "])


@st.composite
def mainland_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """A mainland mobile written in one of the usual ways, and its E.164 form."""
    digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    prefix = draw(st.sampled_from(["", "+86", "0086", "86", "+86 ", "(+86) "]))
    cut = draw(st.integers(1, 10))
    return prefix + digits[:cut] + draw(separators) + digits[cut:], "+86" + digits


def normalized_or_none(function, value: str):  # type: ignore[no-untyped-def]
    try:
        return function(value)
    except BadUserInput:
        return None


@given(mainland_mobiles())
def test_mainland_mobiles_normalise_to_e164(written: tuple[str, str]) -> None:
    value, expected = written
    assert normalize_phone(value) == expected


@st.composite
def written_phones(draw: st.DrawFn) -> str:
    """Digits behind a likely prefix, with separators: valid and invalid numbers alike."""
    prefix = draw(st.sampled_from(["", "+", "+86", "+86 0", "0086", "86", "+1", "+44 ", "+852", "(010)", "0"]))
    digits = draw(st.text(alphabet="0123456789", min_size=5, max_size=16))
    cut = draw(st.integers(0, len(digits)))
    return prefix + digits[:cut] + draw(separators) + digits[cut:]


@given(written_phones())
def test_phone_normalisation_is_idempotent_and_e164(value: str) -> None:
    normalized = normalized_or_none(normalize_phone, value)
    if normalized is None:  # refused input: nothing to normalise again
        return
    assert re.fullmatch(r"\+[1-9][0-9]{7,14}", normalized)
    assert normalize_phone(normalized) == normalized


@given(mainland_mobiles())
def test_phone_normalisation_is_idempotent_on_mobiles(written: tuple[str, str]) -> None:
    once = normalize_phone(written[0])
    assert normalize_phone(once) == once


@st.composite
def written_resident_ids(draw: st.DrawFn) -> tuple[str, str]:
    """A valid resident ID written with spaces and a lowercase x, and its canonical form."""
    area = draw(st.sampled_from("12345678")) + draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    birth = draw(st.dates(date(1900, 1, 1), date(2020, 12, 31))).strftime("%Y%m%d")
    first17 = area + birth + draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    canonical = first17 + resident_id_check_digit(first17)
    cut = draw(st.integers(0, 18))
    written = canonical[:cut] + draw(st.sampled_from(["", " ", "  "])) + canonical[cut:]
    return written.lower(), canonical


@given(written_resident_ids())
def test_national_id_normalisation_is_canonical_and_idempotent(written: tuple[str, str]) -> None:
    value, canonical = written
    normalized = normalize_national_id("resident_id", value)
    assert normalized == canonical
    assert normalize_national_id("resident_id", normalized) == normalized


def test_national_id_example_normalises() -> None:
    assert normalize_national_id("resident_id", "110105 19491231 002x") == "11010519491231002X"


@given(st.emails())
def test_email_normalisation_is_idempotent(value: str) -> None:
    normalized = normalized_or_none(normalize_email, value)
    if normalized is None:  # refused input: nothing to normalise again
        return
    assert normalize_email(normalized) == normalized


@given(st.text(alphabet=st.one_of(st.characters(categories=["L", "N"]), st.sampled_from(" -")), max_size=40))
def test_tag_normalisation_is_idempotent(value: str) -> None:
    normalized = normalized_or_none(normalize_tag, value)
    if normalized is None:  # refused input: nothing to normalise again
        return
    assert normalize_tag(normalized) == normalized


@given(st.text(max_size=60))
def test_clean_text_is_idempotent(value: str) -> None:
    cleaned = normalized_or_none(lambda v: clean_text(v, field="notes", max_length=60), value)
    if cleaned is None:
        return
    assert clean_text(cleaned, field="notes", max_length=60) == cleaned
