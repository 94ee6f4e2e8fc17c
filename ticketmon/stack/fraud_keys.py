"""The demo's fraud-check credentials: an RS256 keypair per run, never a shared secret.

The fraud service gets only the public key, so nothing it or the checkout holds can sign
a token. This module plays the platform's auth service once: it signs the checkout's
token (operator, one tenant) and the private key is then dropped. Whoever reads the
checkout's config gets a token for checks of that tenant, never an admin or all-tenant
one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "ticketmon-stack"


@dataclass(frozen=True)
class FraudCredentials:
    jwt_settings: dict  # the fraud service's auth.jwt: public key and issuer only
    checkout_token: str  # what the checkout sends: a signed token, not a key


def fraud_credentials(tenant: str = "demo", valid_seconds: int = 30 * 86400
                      ) -> FraudCredentials:
    """A fresh keypair; returns the verifier's settings and the checkout's token."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    token = jwt.encode({"sub": "stack-checkout", "role": "operator", "tenant": tenant,
                        "iss": ISSUER, "exp": int(time.time()) + valid_seconds},
                       key, algorithm="RS256")
    return FraudCredentials({"rs256_public_key": public, "issuer": ISSUER}, token)
