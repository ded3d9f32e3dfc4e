"""Signing keys for bearer tokens: ES256, identified by `kid`, rotated by adding a key.

Keys are PEM files in a directory shared by all replicas (a mounted secret in a cluster; the
data dir in the embedded default, where the first start generates one with mode 0600). The
newest file signs; every file verifies, so tokens minted before a rotation stay valid until
they expire, and removing a file revokes what it signed.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ocigate.storage.private import private_dir

ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()


class KeyRing:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("no signing keys")
        self.signing = keys[-1]
        self._by_kid = {key.kid: key for key in keys}

    def verification_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._by_kid.get(kid)
        return key.public_key if key else None

    @classmethod
    def load(cls, directory: Path, *, create: bool = True) -> KeyRing:
        """All `*.pem` keys of `directory`, oldest first; generates one if there is none."""
        paths = sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
        if not paths:
            if not create:
                raise FileNotFoundError(f"no signing keys in {directory}")
            paths = [generate_key(directory)]
        return cls([_load_key(path) for path in paths])


def generate_key(directory: Path) -> Path:
    private_dir(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / f"signing-{key_id(key.public_key())[:16].lower()}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return path


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")


def _load_key(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: signing keys must be EC P-256")
    return SigningKey(key_id(key.public_key()), key)
