"""Inbound verifiers and outbound signers: bytes in, pure, one error type out.

Every verifier has ``verify(body, headers, *, now) -> Verified`` and raises only
``bridge.errors.VerificationError`` with ``code`` ``missing_signature``, ``invalid_signature`` or
``timestamp_out_of_tolerance``. Bodies are hashed as bytes, never decoded; headers are looked up
in any letter case; secrets are checked when a verifier is built (``ValueError``), not per request.
The ``sign_*`` helpers are the partner's side, for tests, the demo and ``share-bridge sign``.
"""

from __future__ import annotations

from bridge.signing._api_key import ApiKeyVerifier
from bridge.signing._base import HmacAlgorithm, HmacEncoding, Verified, Verifier
from bridge.signing._didit import (
    DiditVerified,
    DiditWebhookVerifier,
    SignatureKind,
    canonical_json,
    sign_didit_webhook,
)
from bridge.signing._hmac import HmacVerifier, sign_hmac
from bridge.signing._jwt import SUPPORTED_ALGORITHMS, JwtVerifier, sign_jwt
from bridge.signing._standard_webhooks import (
    StandardWebhooksSigner,
    StandardWebhooksVerifier,
    decode_whsec,
    new_whsec,
)

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "ApiKeyVerifier",
    "DiditVerified",
    "DiditWebhookVerifier",
    "HmacAlgorithm",
    "HmacEncoding",
    "HmacVerifier",
    "JwtVerifier",
    "SignatureKind",
    "StandardWebhooksSigner",
    "StandardWebhooksVerifier",
    "Verified",
    "Verifier",
    "canonical_json",
    "decode_whsec",
    "new_whsec",
    "sign_didit_webhook",
    "sign_hmac",
    "sign_jwt",
]
