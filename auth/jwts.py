"""Bearer tokens (JWT, ES256) for the Docker token flow.

# SECURITY: verification pins the algorithm to ES256 (no `alg: none`, no HS256 signed with the
# public key), looks the key up by `kid` in our own ring only, and requires `aud` to be the
# registry the request is for, so a token minted for registry A is useless on registry B.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from .keys import ALGORITHM, KeyRing
from .scopes import Scope

ISSUER = "ocigate"
LEEWAY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    kind: str  # user | token
    account_id: str
    token_id: str | None
    access: tuple[Scope, ...]
    refresh: bool
    issued_at: int
    expires_at: int
    user_id: str | None = None  # account users: the user and the credential generation minted under
    generation: int | None = None


class InvalidToken(Exception):
    pass


class BearerTokens:
    def __init__(self, keys: KeyRing, ttl_seconds: int = 300, refresh_ttl_seconds: int = 30 * 86400) -> None:
        self._keys = keys
        self.ttl = ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds

    def mint(
        self,
        *,
        subject: str,
        kind: str,
        account_id: str,
        token_id: str | None,
        audience: str,
        access: list[Scope],
        refresh: bool = False,
        ttl: int | None = None,
        user_id: str | None = None,
        generation: int | None = None,
    ) -> tuple[str, Claims]:
        now = int(time.time())
        lifetime = ttl or (self.refresh_ttl if refresh else self.ttl)
        payload: dict[str, object] = {
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now - 1,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "kind": kind,
            "acct": account_id,
            "access": [scope.as_claim() for scope in access],
        }
        if token_id is not None:
            payload["tid"] = token_id
        if user_id is not None:
            payload["uid"] = user_id
            payload["gen"] = generation or 0
        if refresh:
            payload["typ"] = "refresh"
        signing = self._keys.signing
        token = jwt.encode(payload, signing.private_key, algorithm=ALGORITHM, headers={"kid": signing.kid})
        claims = Claims(
            subject,
            kind,
            account_id,
            token_id,
            tuple(access),
            refresh,
            now,
            now + lifetime,
            user_id,
            generation,
        )
        return token, claims

    def verify(self, token: str, audience: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.verification_key(str(header.get("kid", "")))
            if key is None or header.get("alg") != ALGORITHM:
                raise InvalidToken("unknown signing key")
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
            access = tuple(
                Scope(str(entry["type"]), str(entry["name"]), frozenset(map(str, entry["actions"])))
                for entry in payload.get("access", [])
            )
            return Claims(
                subject=str(payload["sub"]),
                kind=str(payload["kind"]),
                account_id=str(payload["acct"]),
                token_id=payload.get("tid"),
                access=access,
                refresh=payload.get("typ") == "refresh",
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
                user_id=str(payload["uid"]) if "uid" in payload else None,
                generation=int(payload["gen"]) if "gen" in payload else None,
            )
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise InvalidToken(str(exc)) from None
