"""HTTPS on the listener: one TLS context from `OCIGATE_TLS_CERT` / `OCIGATE_TLS_KEY`, swapped
for new handshakes when the files change.

TLS 1.2 and 1.3 only; for 1.2, ECDHE with AES-GCM or ChaCha20 (forward secrecy, AEAD: Mozilla's
"intermediate" set, which every registry client speaks); ALPN `http/1.1` (no h2: the gateway is
HTTP/1.1).

Reloading without dropping anything: the listener keeps the context it started with, whose SNI
callback (run by OpenSSL for every ClientHello, with or without a server name) hands each new
handshake the newest context. An open connection keeps the certificate it shook hands with. The
files are polled (two stat calls every `POLL_SECONDS`): cert-manager and certbot replace them
atomically (a renamed file or a swapped symlink), which changes the inode or mtime; SIGHUP reloads
at once. New files that do not load (a key from before the certificate was renewed, a half-written
copy) leave the previous context serving and are logged; the next change is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path

log = logging.getLogger("ocigate.tls")

POLL_SECONDS = 2.0
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # TLS 1.3's suites are all AEAD and fixed by OpenSSL

FileStamp = tuple[tuple[int, int, int, int], ...]


class TlsError(Exception):
    """Certificate files that cannot be served; says which and why."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])
    for path, name in ((cert, "OCIGATE_TLS_CERT"), (key, "OCIGATE_TLS_KEY")):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise TlsError(f"{name} {path}: {exc.strerror}") from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = "the key does not match the certificate" if "KEY_VALUES_MISMATCH" in str(exc) else exc.reason
        raise TlsError(f"cannot serve {cert} with key {key}: {reason or exc} (PEM files expected)") from None
    except OSError as exc:  # replaced between the check above and the load
        raise TlsError(f"cannot read {cert} or {key}: {exc.strerror or exc}") from None
    return context


def _stamp(*paths: Path) -> FileStamp:
    """What changes when a file is replaced or rewritten (stat follows symlinks)."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamps.append((0, 0, 0, 0))
        else:
            stamps.append((info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


class Certificates:
    """The listener's TLS context and the newest certificate it hands to handshakes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._cert, self._key = cert, key
        self._stamp = _stamp(cert, key)
        self.context = self._current = server_context(cert, key)  # TlsError: the caller says why
        self.context.sni_callback = self._choose
        self.reloads = 0

    def _choose(self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        current = self._current
        if current is not context:
            ssl_object.context = current

    def reload(self, reason: str = "SIGHUP") -> bool:
        """Load the files afresh; True when new handshakes now get them."""
        self._stamp = _stamp(self._cert, self._key)
        try:
            context = server_context(self._cert, self._key)
        except TlsError as exc:
            log.warning("TLS certificate not reloaded (%s): %s; still serving the previous one", reason, exc)
            return False
        self._current = context
        self.reloads += 1
        log.info("TLS certificate reloaded (%s) from %s", reason, self._cert)
        return True

    def changed(self) -> bool:
        return _stamp(self._cert, self._key) != self._stamp

    async def watch(self) -> None:
        """Reload whenever the files change, until cancelled."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.changed():
                self.reload("files changed")
