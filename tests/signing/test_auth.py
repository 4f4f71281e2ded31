"""bridge.auth: verifiers built from the configuration, and the headers a partner sends."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bridge import auth, config, signing
from bridge.errors import VerificationError
from tests.signing.strategies import NOW

WHSEC = "whsec_" + base64.b64encode(b"acme-key-0123456789abcdef").decode()
WHSEC_NEXT = "whsec_" + base64.b64encode(b"acme-key-next-456789abcdef").decode()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = (
    EC_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EC_PRIVATE = EC_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
EC_NEXT = ec.generate_private_key(ec.SECP256R1())
EC_NEXT_PUBLIC = (
    EC_NEXT.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EC_NEXT_PRIVATE = EC_NEXT.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
BODY = '{"share_token": "eyJ...", "event_id": "e-1", "name": "Zoë"}'.encode()

SCHEMES: dict[str, dict[str, Any]] = {
    "standard-webhooks": {"scheme": "standard-webhooks", "secrets": [WHSEC, WHSEC_NEXT]},
    "hmac": {
        "scheme": "hmac",
        "secrets": ["globex-secret-5e1f9b"],
        "algorithm": "sha512",
        "encoding": "base64",
        "signature_header": "X-Globex-Signature",
        "timestamp_header": "X-Globex-Timestamp",
    },
    "hmac-no-timestamp": {"scheme": "hmac", "secrets": ["globex-secret-5e1f9b"]},
    "jwt-hs256": {
        "scheme": "jwt",
        "algorithms": ["HS256"],
        "key": "initech-hs256-secret-0f3b8e21c7d94a6b",
        "issuer": "initech",
        "audience": "our-app",
        "body_hash_claim": "body_sha256",
    },
    "api-key": {
        "scheme": "api-key",
        "header": "X-Hooli-Key",
        "keys": ["hooli-key-1-7d2e9a4c", "hooli-key-2-3b8f6e1a"],
    },
}


def auth_model(raw: dict[str, Any]) -> config.PartnerAuth:
    return config.Partner.model_validate({"auth": raw}).auth


def settings(**overrides: Any) -> config.Settings:
    raw: dict[str, Any] = {
        "didit": {"api_key": "k", "application_id": "3c5b9a2e-0000-4000-8000-000000000009"},
        "partners": {name: {"auth": scheme} for name, scheme in SCHEMES.items()},
        "rules": [
            {
                "name": "all",
                "then": {
                    "workflow_id": "3c5b9a2e-0000-4000-8000-000000000001",
                    "vendor_data": "{event_id}",
                },
            }
        ],
        **overrides,
    }
    return config.Settings.model_validate(raw)


class TestVerifierFor:
    @pytest.mark.parametrize("name", sorted(SCHEMES))
    def test_partner_headers_verify_with_the_partners_verifier(self, name: str) -> None:
        """For every scheme, what ``bridge sign`` produces is what intake accepts."""
        model = auth_model(SCHEMES[name])
        headers = auth.partner_headers(model, BODY, now=NOW, message_id="msg_cli")
        assert headers["Content-Type"] == "application/json"
        verifier = auth.verifier_for(model)
        result = verifier.verify(BODY, headers, now=NOW)
        assert result.message_id == (
            "msg_cli" if name in {"standard-webhooks", "jwt-hs256"} else None
        )
        with pytest.raises(VerificationError) as caught:
            verifier.verify(BODY, {"Content-Type": "application/json"}, now=NOW)
        assert caught.value.code == "missing_signature"
        if name != "api-key":  # the one scheme that does not cover the body
            with pytest.raises(VerificationError):
                verifier.verify(BODY + b" ", headers, now=NOW)

    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("standard-webhooks", signing.StandardWebhooksVerifier),
            ("hmac", signing.HmacVerifier),
            ("jwt-hs256", signing.JwtVerifier),
            ("api-key", signing.ApiKeyVerifier),
        ],
    )
    def test_scheme_selects_the_verifier(self, name: str, kind: type) -> None:
        """Each configured scheme gets its own verifier class."""
        assert isinstance(auth.verifier_for(auth_model(SCHEMES[name])), kind)

    def test_hmac_options_are_honoured(self) -> None:
        """Algorithm, encoding and header names from the config reach the verifier."""
        verifier = auth.verifier_for(auth_model(SCHEMES["hmac"]))
        signature = signing.sign_hmac(
            "globex-secret-5e1f9b", BODY, algorithm="sha512", encoding="base64", timestamp=int(NOW)
        )
        headers = {"x-globex-signature": signature, "x-globex-timestamp": str(int(NOW))}
        verifier.verify(BODY, headers, now=NOW)
        with pytest.raises(VerificationError) as caught:
            verifier.verify(BODY, headers, now=NOW + 301)  # the default tolerance
        assert caught.value.code == "timestamp_out_of_tolerance"

    def test_jwt_with_public_keys_for_rotation(self) -> None:
        """A PEM public key verifies ES256 tokens; ``keys`` adds rotation keys after ``key``."""
        model = auth_model(
            {"scheme": "jwt", "algorithms": ["ES256"], "key": EC_PUBLIC, "keys": [EC_NEXT_PUBLIC]}
        )
        verifier = auth.verifier_for(model)
        for key in (EC_PRIVATE, EC_NEXT_PRIVATE):
            token = signing.sign_jwt(BODY, key, now=NOW, algorithm="ES256", jti="j-7")
            assert (
                verifier.verify(BODY, {"authorization": f"Bearer {token}"}, now=NOW).message_id
                == "j-7"
            )

    def test_jwks_file(self, tmp_path: Path) -> None:
        """``jwks_file`` is read into the verifier's key set."""
        jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
        path = tmp_path / "initech.jwks.json"
        path.write_text(json.dumps({"keys": [{**jwk, "kid": "2026"}]}))
        model = auth_model({"scheme": "jwt", "algorithms": ["ES256"], "jwks_file": str(path)})
        token = signing.sign_jwt(BODY, EC_PRIVATE, now=NOW, algorithm="ES256", kid="2026")
        auth.verifier_for(model).verify(BODY, {"Authorization": f"Bearer {token}"}, now=NOW)

    @pytest.mark.parametrize("content", [None, "not json", "[]", '{"keys": []}'])
    def test_jwks_file_broken_after_loading(self, tmp_path: Path, content: str | None) -> None:
        """A JWKS file that changed since the config was checked is a ValueError naming it."""
        path = tmp_path / "keys.json"
        path.write_text(json.dumps({"keys": [json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))]}))
        model = auth_model({"scheme": "jwt", "algorithms": ["ES256"], "jwks_file": str(path)})
        path.unlink()
        if content is not None:
            path.write_text(content)
        with pytest.raises(ValueError, match="JWKS"):
            auth.verifier_for(model)


class TestSettings:
    def test_verifiers_for_every_partner(self) -> None:
        """One verifier per configured partner, by name."""
        verifiers = auth.verifiers_for(settings())
        assert sorted(verifiers) == sorted(SCHEMES)

    def test_unusable_partner_is_named(self, tmp_path: Path) -> None:
        """A partner whose keys stopped working after loading is reported with its config path."""
        jwks = tmp_path / "keys.json"
        jwks.write_text(json.dumps({"keys": [json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))]}))
        partners = {
            "broken": {"auth": {"scheme": "jwt", "algorithms": ["ES256"], "jwks_file": str(jwks)}}
        }
        loaded = settings(partners=partners)
        jwks.unlink()
        with pytest.raises(ValueError, match=r"^partners\.broken\.auth: cannot read the JWKS file"):
            auth.verifiers_for(loaded)

    def test_didit_webhook_verifier(self) -> None:
        """Configured Didit webhooks get a verifier; without the block there is none."""
        assert auth.didit_webhook_verifier(settings()) is None
        configured = settings(didit_webhooks={"secrets": ["didit-secret"], "tolerance_s": 60})
        verifier = auth.didit_webhook_verifier(configured)
        assert verifier is not None
        body = json.dumps({"session_id": "s", "status": "Approved", "timestamp": int(NOW)}).encode()
        headers = signing.sign_didit_webhook("didit-secret", body, timestamp=int(NOW))
        assert verifier.verify(body, headers, now=NOW).signature == "v2"
        with pytest.raises(VerificationError):
            verifier.verify(body, headers, now=NOW + 61)


class TestPartnerHeaders:
    @pytest.mark.parametrize("shape", ["key", "keys", "jwks_file"])
    def test_jwt_partner_with_a_public_key_cannot_be_signed_for(
        self, tmp_path: Path, shape: str
    ) -> None:
        """Only the partner holds its private key: signing explains that instead of guessing."""
        jwks = tmp_path / "keys.json"
        jwks.write_text(json.dumps({"keys": [json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))]}))
        value: object = {"key": EC_PUBLIC, "keys": [EC_PUBLIC], "jwks_file": str(jwks)}[shape]
        model = auth_model({"scheme": "jwt", "algorithms": ["ES256"], shape: value})
        with pytest.raises(ValueError, match="private key"):
            auth.partner_headers(model, BODY, now=NOW, message_id="m")

    def test_first_secret_signs(self) -> None:
        """With two secrets configured, the first one signs, and only one signature is sent."""
        model = auth_model(SCHEMES["standard-webhooks"])
        headers = auth.partner_headers(model, BODY, now=NOW, message_id="msg_1")
        assert headers["webhook-signature"] == signing.StandardWebhooksSigner([WHSEC]).sign(
            "msg_1", int(NOW), BODY
        )
