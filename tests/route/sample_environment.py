"""What an operator exports for ``samples/bridge.yaml``: its secrets and our application id."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"
OURS = "a5f3bca2-1111-4222-8333-444455556666"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVIRON = {
    "DIDIT_API_KEY": "didit-api-key-for-tests",
    "DIDIT_APPLICATION_ID": OURS,
    "ACME_WHSEC": WHSEC,
    "GLOBEX_SECRET": "globex-shared-secret-0123456789",
    "INITECH_KEY": "initech-api-key-0123456789",
    "HOOLI_KEY": "hooli-api-key-0123456789",
    "CRM_WHSEC": WHSEC,
    "AUDIT_WHSEC": WHSEC,
}
