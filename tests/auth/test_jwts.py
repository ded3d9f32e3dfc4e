"""Bearer tokens: only our own ES256 signatures for the right audience are accepted."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ocigate.auth.jwts import BearerTokens, InvalidToken
from ocigate.auth.keys import KeyRing, generate_key
from ocigate.auth.scopes import Scope

PULL = [Scope("repository", "app", frozenset({"pull"}))]


@pytest.fixture
def tokens(tmp_path: Path) -> BearerTokens:
    return BearerTokens(KeyRing.load(tmp_path / "keys"))


def mint(tokens: BearerTokens, audience: str = "alpha.ocigate.test") -> str:
    token, _ = tokens.mint(
        subject="ci", kind="token", account_id="acct", token_id="t1", audience=audience, access=PULL
    )
    return token


def test_round_trip(tokens: BearerTokens) -> None:
    claims = tokens.verify(mint(tokens), "alpha.ocigate.test")
    assert (claims.subject, claims.token_id, claims.access) == ("ci", "t1", tuple(PULL))


def test_other_audience_is_refused(tokens: BearerTokens) -> None:
    with pytest.raises(InvalidToken):
        tokens.verify(mint(tokens, "alpha.ocigate.test"), "beta.ocigate.test")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_forgeries_are_refused(tokens: BearerTokens, tmp_path: Path) -> None:
    genuine = mint(tokens)
    header_b64, _, signature = genuine.split(".")
    payload = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    escalated = dict(payload, access=[{"type": "repository", "name": "app", "actions": ["pull", "push"]}])

    other_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = tokens._keys.signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forgeries = {
        "alg none": f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(escalated)}.",
        "tampered payload": f"{header_b64}.{_b64(escalated)}.{signature}",
        "another key, our kid": jwt.encode(escalated, other_key, algorithm="ES256", headers={"kid": kid}),
        "HS256 keyed with our public key": _hs256(escalated, public_pem, kid),
        "expired": jwt.encode(
            dict(payload, exp=int(time.time()) - 60),
            tokens._keys.signing.private_key,
            algorithm="ES256",
            headers={"kid": kid},
        ),
        "garbage": "not.a.jwt",
    }
    accepted = []
    for name, forged in forgeries.items():
        try:
            tokens.verify(forged, "alpha.ocigate.test")
        except InvalidToken:
            continue
        accepted.append(name)
    assert accepted == []


def _hs256(payload: dict[str, object], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    before = BearerTokens(KeyRing.load(directory))
    old_token = mint(before)
    time.sleep(0.01)
    generate_key(directory)
    after = BearerTokens(KeyRing.load(directory))
    assert after.verify(old_token, "alpha.ocigate.test").subject == "ci"
    new_token = mint(after)
    assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    with pytest.raises(InvalidToken):  # a replica that does not know the new key refuses it
        before.verify(new_token, "alpha.ocigate.test")


def test_generated_key_is_private(tmp_path: Path) -> None:
    KeyRing.load(tmp_path / "keys")
    (path,) = (tmp_path / "keys").glob("*.pem")
    assert path.stat().st_mode & 0o777 == 0o600
