"""Field-level encryption: AES-256-GCM envelopes, per-institution keys, blind indexes.

Key hierarchy: the master key (environment or key file) derives, with HKDF, a key-
encryption key that wraps each institution's data key, and a token-HMAC key. Each
institution data key derives its own field-encryption and blind-index keys. Every
ciphertext is bound by AAD to institution, table, column and row id, so a ciphertext
copied to another row or column fails to open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
ENVELOPE_VERSION = 1
_HEADER = struct.Struct(">BI")  # envelope version, institution key version
PLACEHOLDER_KEYS = frozenset({b"\x00" * KEY_BYTES, b"changeme" * 4, b"0" * KEY_BYTES})


class DecryptionError(Exception):
    """A ciphertext did not open: wrong key, wrong AAD or tampered bytes."""


def derive_key(secret: bytes, purpose: str) -> bytes:
    return HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=f"careloop:{purpose}".encode()).derive(secret)


def field_aad(institution_id: uuid.UUID, table: str, column: str, row_id: uuid.UUID) -> bytes:
    return f"{institution_id}|{table}|{column}|{row_id}".encode()


def cursor_aad(institution_id: uuid.UUID, kind: str) -> bytes:
    """A sealed list cursor's AAD: it opens for the institution and the list (its kind names the order) that
    wrote it only. Its first part is no institution id, so it is never a field's."""
    return f"cursor|{institution_id}|{kind}".encode()


class MasterKey:
    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes")
        self._kek = AESGCM(derive_key(raw, "kek:v1"))
        self.token_key = derive_key(raw, "token-hmac:v1")
        # Signs the audit trail's checkpoints; its public half lets an outside auditor check them.
        self.checkpoint_key = Ed25519PrivateKey.from_private_bytes(derive_key(raw, "audit-checkpoint-ed25519:v1"))
        # MACs every audit event, so rows posted to the trail by someone without the key are found (audit.verify).
        self.audit_mac_key = derive_key(raw, "audit-event-mac:v1")
        # MACs a backup's manifest, so a backup altered by whoever holds it without the key is refused (app.backup).
        self.backup_mac_key = derive_key(raw, "backup-manifest-mac:v1")
        self.is_placeholder = raw in PLACEHOLDER_KEYS

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise ValueError("the master key is not valid base64") from None
        return cls(raw)

    def wrap(self, data_key: bytes, institution_id: uuid.UUID, version: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, data_key, _wrap_aad(institution_id, version))

    def unwrap(self, wrapped: bytes, institution_id: uuid.UUID, version: int) -> bytes:
        if len(wrapped) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("wrapped institution key is truncated")
        try:
            return self._kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(institution_id, version))
        except InvalidTag:
            raise DecryptionError("institution key does not unwrap with this master key") from None


def public_key_pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the start of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _wrap_aad(institution_id: uuid.UUID, version: int) -> bytes:
    return f"institution-key|{institution_id}|{version}".encode()


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def generate_key_file(path: Path) -> bool:
    """Create a new random master key file readable by its owner only; False if one exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
    return True


@dataclass
class InstitutionKeys:
    """One institution's unwrapped key versions; the newest usable one seals, any known one opens."""

    institution_id: uuid.UUID
    versions: dict[int, AESGCM] = field(default_factory=dict)
    index_keys: dict[int, bytes] = field(default_factory=dict)
    nonce_keys: dict[int, bytes] = field(default_factory=dict)  # ``seal_stable``'s
    current: int = 0

    def add(self, version: int, data_key: bytes, *, seals: bool = True) -> None:
        """A key version: it opens at once; it seals only once every worker is sure to know it
        (``seals``), so nothing is written that another worker could not yet open."""
        self.versions[version] = AESGCM(derive_key(data_key, "field-enc:v1"))
        self.index_keys[version] = derive_key(data_key, "blind-index:v1")
        self.nonce_keys[version] = derive_key(data_key, "synthetic-nonce:v1")
        if seals:
            self.current = max(self.current, version)

    def seal(self, plaintext: str, aad: bytes) -> bytes:
        return self.seal_bytes(plaintext.encode(), aad)

    def seal_bytes(self, plaintext: bytes, aad: bytes) -> bytes:
        return self._seal(plaintext, aad, os.urandom(NONCE_BYTES))

    def seal_stable(self, plaintext: bytes, aad: bytes) -> bytes:
        """``seal_bytes`` giving the same envelope for the same plaintext and AAD, for a value handed out again and
        again and compared whole (a list's cursor): its nonce is a keyed hash of both (a synthetic IV, as in SIV),
        so a nonce repeats only with its whole message. Two envelopes show whether they are equal, nothing more;
        ``open_bytes`` opens them."""
        header = _HEADER.pack(ENVELOPE_VERSION, self.current)
        message = struct.pack(">I", len(aad)) + header + aad + plaintext  # the AAD's length: no two messages alike
        return self._seal(plaintext, aad, hmac.new(self.nonce_keys[self.current], message,
                                                   hashlib.sha256).digest()[:NONCE_BYTES])

    def _seal(self, plaintext: bytes, aad: bytes, nonce: bytes) -> bytes:
        header = _HEADER.pack(ENVELOPE_VERSION, self.current)
        return header + nonce + self.versions[self.current].encrypt(nonce, plaintext, header + aad)

    def open(self, envelope: bytes, aad: bytes) -> str:
        return self.open_bytes(envelope, aad).decode()

    def open_bytes(self, envelope: bytes, aad: bytes) -> bytes:
        envelope = bytes(envelope)
        try:
            envelope_version, key_version = _HEADER.unpack_from(envelope)
            aead = self.versions[key_version]
        except (struct.error, KeyError):
            raise DecryptionError("unknown envelope or key version") from None
        if envelope_version != ENVELOPE_VERSION:
            raise DecryptionError("unknown envelope version")
        header, body = envelope[: _HEADER.size], envelope[_HEADER.size :]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("envelope is truncated")
        try:
            return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], header + aad)
        except InvalidTag:
            raise DecryptionError("ciphertext does not open under this key and context") from None

    def blind_index(self, kind: str, normalized: str) -> str:
        """Keyed HMAC of a normalised value, for exact lookups without decrypting.

        The first key version indexes for the institution's lifetime, so an index stays
        comparable across key rotations.
        """
        key = self.index_keys[min(self.index_keys)]
        return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()
