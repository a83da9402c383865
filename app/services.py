"""Process-wide services built from settings, and the start-up safety checks."""

from __future__ import annotations

import os
import stat

from audit import writer
from core.crypto import MasterKey, generate_key_file
from core.passwords import HashParameters, Passwords
from core.principal_cache import PrincipalCache
from core.settings import Settings
from core.storage import LocalDirectory
from models.keyring import KeyRing
from policies.guard import Guard
from resolvers.context import Services


class StartupError(SystemExit):
    """A configuration that must not run; the message says what to fix."""


def load_master_key(settings: Settings, *, create: bool = False) -> MasterKey:
    if settings.master_key:
        try:
            key = MasterKey.from_base64(settings.master_key)
        except ValueError as exc:
            raise StartupError(f"CARELOOP_MASTER_KEY: {exc}") from None
    else:
        path = settings.key_file
        if create and not settings.is_production:
            generate_key_file(path)
        if not path.exists() and create:  # careloop init in production: the operator makes and keeps the key
            raise StartupError(
                "No master key: in production careloop init does not create one. Generate 32 random bytes "
                "(openssl rand -base64 32), keep them in your secret store (losing the key loses every sealed "
                "field) and set CARELOOP_MASTER_KEY to them, or write them to a key file readable by the service "
                f"only (0600) and set CARELOOP_KEY_FILE (now {path}); then run careloop init again.")
        if not path.exists():
            raise StartupError(
                f"No master key: set CARELOOP_MASTER_KEY or create the key file {path} ("
                + ("32 random bytes in base64, mode 0600: docs/operations.md)." if settings.is_production
                   else "careloop init does).")
            )
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            raise StartupError(f"The key file {path} must be readable by its owner only (chmod 600).")
        try:
            key = MasterKey.from_base64(path.read_text())
        except ValueError as exc:
            raise StartupError(f"{path}: {exc}") from None
    if settings.is_production and key.is_placeholder:
        raise StartupError("The master key is a placeholder; production needs a random 32-byte key.")
    writer.use_mac_key(key.audit_mac_key)  # a process holding the key MACs every audit event it appends
    return key


def build_services(settings: Settings, *, create_key: bool = False) -> Services:
    parameters = settings.password_hashing
    if settings.is_production and not parameters.meets_owasp_minimum():
        raise StartupError("Password hashing parameters are below the OWASP minimum; production refuses them.")
    master_key = load_master_key(settings, create=create_key)
    return Services(
        settings=settings,
        master_key=master_key,
        keyring=KeyRing(master_key),
        guard=Guard(),
        passwords=Passwords(parameters or HashParameters()),
        storage=LocalDirectory(settings.attachment_dir),
        principals=PrincipalCache(settings.principal_cache_seconds),
    )
