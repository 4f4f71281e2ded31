"""Partner authentication from configuration: the verifiers intake uses, and what partners send.

``bridge.signing`` takes plain values; this module unwraps the validated config models into them,
so the signing code never sees ``Settings`` and the config never sees a verifier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge import config, signing

JSON_CONTENT_TYPE = {"Content-Type": "application/json"}
_JWT_TTL_S = 300


def _load_jwks(path: str) -> Mapping[str, Any]:
    try:
        document = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the JWKS file {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"the JWKS file {path} does not hold a JSON object")
    return document


def _jwt_keys(auth: config.JwtAuth) -> list[str]:
    return [key.get_secret_value() for key in auth.verification_keys]


def verifier_for(auth: config.PartnerAuth) -> signing.Verifier:
    """The verifier for one partner's ``auth`` block; ValueError when its keys are unusable."""
    if isinstance(auth, config.StandardWebhooksAuth):
        secrets = [secret.get_secret_value() for secret in auth.secrets]
        return signing.StandardWebhooksVerifier(secrets, auth.tolerance_s)
    if isinstance(auth, config.HmacAuth):
        return signing.HmacVerifier(
            [secret.get_secret_value() for secret in auth.secrets],
            algorithm=auth.algorithm,
            encoding=auth.encoding,
            signature_header=auth.signature_header,
            timestamp_header=auth.timestamp_header,
            tolerance_s=auth.tolerance_s,
        )
    if isinstance(auth, config.JwtAuth):
        return signing.JwtVerifier(
            algorithms=auth.algorithms,
            keys=_jwt_keys(auth),
            jwks=None if auth.jwks_file is None else _load_jwks(auth.jwks_file),
            issuer=auth.issuer,
            audience=auth.audience,
            max_age_s=auth.max_age_s,
            body_hash_claim=auth.body_hash_claim,
            require_jti=auth.require_jti,
            leeway_s=auth.tolerance_s,
        )
    return signing.ApiKeyVerifier(auth.header, [key.get_secret_value() for key in auth.keys])


def verifiers_for(settings: config.Settings) -> dict[str, signing.Verifier]:
    """One verifier per configured partner, by partner name."""
    verifiers: dict[str, signing.Verifier] = {}
    for name, partner in settings.partners.items():
        try:
            verifiers[name] = verifier_for(partner.auth)
        except ValueError as exc:
            raise ValueError(f"partners.{name}.auth: {exc}") from None
    return verifiers


def didit_webhook_verifier(settings: config.Settings) -> signing.DiditWebhookVerifier | None:
    """The verifier for Didit's webhooks, or None when ``didit_webhooks`` is not configured."""
    hooks = settings.didit_webhooks
    if hooks is None:
        return None
    secrets = [secret.get_secret_value() for secret in hooks.secrets]
    return signing.DiditWebhookVerifier(secrets, hooks.tolerance_s)


def _jwt_token(auth: config.JwtAuth, body: bytes, *, now: float, message_id: str) -> str:
    keys = _jwt_keys(auth)
    algorithm = next((alg for alg in auth.algorithms if alg.startswith("HS")), None)
    if not keys or "-----BEGIN" in keys[0] or algorithm is None:
        raise ValueError(
            "this partner signs its JWTs with its own private key, which the bridge does not hold; "
            "only HS256 shared secrets can be signed here"
        )
    return signing.sign_jwt(
        body,
        keys[0],
        now=now,
        algorithm=algorithm,
        issuer=auth.issuer,
        audience=auth.audience,
        jti=message_id,
        body_hash_claim=auth.body_hash_claim,
        ttl_s=_JWT_TTL_S,
    )


def partner_headers(
    auth: config.PartnerAuth, body: bytes, *, now: float, message_id: str
) -> dict[str, str]:
    """The headers a partner sends with ``body``, signed with its first secret or key.

    The config guarantees at least one secret per scheme.
    ValueError when the bridge cannot sign for this partner (a JWT partner with a public key).
    """
    timestamp = int(now)
    if isinstance(auth, config.StandardWebhooksAuth):
        signer = signing.StandardWebhooksSigner([auth.secrets[0].get_secret_value()])
        return {**JSON_CONTENT_TYPE, **signer.headers(message_id, timestamp, body)}
    if isinstance(auth, config.HmacAuth):
        stamp = None if auth.timestamp_header is None else timestamp
        signature = signing.sign_hmac(
            auth.secrets[0].get_secret_value(),
            body,
            algorithm=auth.algorithm,
            encoding=auth.encoding,
            timestamp=stamp,
        )
        headers = {**JSON_CONTENT_TYPE, auth.signature_header: signature}
        if auth.timestamp_header is not None:
            headers[auth.timestamp_header] = str(timestamp)
        return headers
    if isinstance(auth, config.JwtAuth):
        token = _jwt_token(auth, body, now=now, message_id=message_id)
        return {**JSON_CONTENT_TYPE, "Authorization": f"Bearer {token}"}
    return {**JSON_CONTENT_TYPE, auth.header: auth.keys[0].get_secret_value()}
