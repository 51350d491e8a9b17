"""Token verification edge cases, against the verifier itself (no stack needed)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reelscribe.auth import JwksCache, TokenVerifier
from reelscribe.errors import Unauthenticated

SECRET = "unit-secret-" + "z" * 40
DAY_S = 24 * 3600.0
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "unit-user",
        "iat": now,
        "exp": now + 600,
        "iss": "reelscribe",
        "aud": "reelscribe",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(**overrides: Any) -> str:
    return "Bearer " + jwt.encode(_claims(**overrides), SECRET, algorithm="HS256")


def _verifier(**kwargs: Any) -> TokenVerifier:
    return TokenVerifier(SECRET, max_lifetime_s=7 * DAY_S, **kwargs)


async def test_a_well_formed_token_verifies() -> None:
    principal = await _verifier().verify(_hs256(plan="premium"))
    assert (principal.subject, principal.role, principal.plan) == ("unit-user", "user", "premium")


@pytest.mark.parametrize(
    ("iat_offset_s", "exp_offset_s"),
    [
        (0, None),  # exp in 9999-12-31
        (-30 * 86400, 600),  # issued 30 days ago, valid for ten more minutes
        (None, 8 * 86400),  # no iat, 8 days ahead
    ],
)
async def test_tokens_living_longer_than_the_maximum_are_refused(
    iat_offset_s: int | None, exp_offset_s: int | None
) -> None:
    # Times are taken when the test runs, not when it is collected.
    now = int(time.time())
    claims = {
        "iat": None if iat_offset_s is None else now + iat_offset_s,
        "exp": 253402300799 if exp_offset_s is None else now + exp_offset_s,
    }
    with pytest.raises(Unauthenticated) as err:
        await _verifier().verify(_hs256(**claims))
    assert err.value.reason == "TOKEN_LIFETIME_TOO_LONG"


@pytest.mark.parametrize(
    ("role", "expected"),
    [("admin", "admin"), ("user", "user"), (["user", "admin"], "admin"), (["editor"], "user")],
)
async def test_roles_as_strings_or_lists(role: object, expected: str) -> None:
    assert (await _verifier().verify(_hs256(role=role))).role == expected


@pytest.mark.parametrize("role", ["root", 7, {"admin": True}, ["admin", 3]])
async def test_malformed_roles_are_unauthenticated(role: object) -> None:
    with pytest.raises(Unauthenticated):
        await _verifier().verify(_hs256(role=role))


@pytest.mark.parametrize("plan", ["Free", "", "enterprise", 3, None, ["premium"]])
async def test_unknown_plans_get_the_most_restrictive_plan(plan: object) -> None:
    assert (await _verifier().verify(_hs256(plan=plan))).plan == "free"


@pytest.mark.parametrize("sub", ["\ud800", "a\x00b", "tab\there", "", "x" * 257, 42, ["a"]])
async def test_subjects_must_be_printable_text(sub: object) -> None:
    # json.dumps escapes a lone surrogate as ASCII (`\\ud800`), so it reaches the
    # verifier as one after decoding, the way a hostile identity provider would send it.
    body = json.dumps(_claims(sub=sub)).encode()
    token = jwt.api_jws.PyJWS().encode(body, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated):
        await _verifier().verify("Bearer " + token)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    keys = []
    for key, kid, algo in (
        (RSA_KEY, "rsa-1", jwt.algorithms.RSAAlgorithm),
        (EC_KEY, "ec-1", jwt.algorithms.ECAlgorithm),
    ):
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "use": "sig"})  # no `alg`: inferred from the key type
        keys.append(jwk)
    body = json.dumps({"keys": keys}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


async def test_a_token_naming_a_key_of_another_type_is_unauthenticated(jwks_url: str) -> None:
    verifier = _verifier(algorithms=("RS256", "ES256"), jwks=JwksCache(jwks_url))
    good = jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    assert (await verifier.verify("Bearer " + good)).subject == "unit-user"
    # An RS256 token whose kid names the EC key: refused, not a TypeError.
    crossed = jwt.encode(_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "ec-1"})
    with pytest.raises(Unauthenticated) as err:
        await verifier.verify("Bearer " + crossed)
    assert err.value.reason == "INVALID_TOKEN"
