"""Writes the sample notification bodies next to this file: ``python make_samples.py``.

The tokens are HS256 JWTs with the claims Didit documents, signed with a key only this script
knows (the bridge never verifies them). Valid tokens expire in 2100, so the samples also work
without ``bridge route --now``; the expired one expired in 2023.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

SIGNING_KEY = "not-didit-just-the-samples-signing-key"
OURS = "a5f3bca2-1111-4222-8333-444455556666"
OTHER_APP = "0b0b0b0b-2222-4333-8444-555566667777"
ACME_APP = "dbd20e34-aaaa-4bbb-8ccc-ddddeeeeffff"
TRUSTED_APP = "5e1f0c3a-7777-4888-9999-aaaabbbbcccc"
ISSUED = 1_779_999_400
FAR_FUTURE = 4_102_444_800  # 2100-01-01


def share_token(
    session: int,
    *,
    kind: str | None = "user",
    source: str = ACME_APP,
    target: str = OURS,
    iat: int = ISSUED,
    exp: int = FAR_FUTURE,
) -> str:
    claims: dict[str, Any] = {
        "session_id": f"20bb3c3b-0000-4000-8000-{session:012d}",
        "session_kind": kind,
        "from_application_id": source,
        "for_application_id": target,
        "iat": iat,
        "exp": exp,
    }
    if kind is None:  # minted before the unified sharing rollout
        del claims["session_kind"]
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")


def acme(token: str | None, event: str, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event, **payload}
    if token is not None:
        body["share_token"] = token
    return body


def globex(token: str, event: str, **payload: Any) -> dict[str, Any]:
    return {"meta": {"delivery_id": event}, "data": {"share": {"token": token}}, **payload}


SAMPLES: dict[str, object] = {
    "acme-kyc-eu": acme(share_token(1), "evt-acme-1", region="EU", customer={"id": "C-1001"}),
    "acme-kyb-uk": acme(
        share_token(2, kind="business"),
        "evt-acme-2",
        region="UK",
        company={"registration_number": "GB-0987654"},
    ),
    "acme-old-token": acme(
        share_token(3, kind=None), "evt-acme-3", region="UK", customer={"id": "C-1003"}
    ),
    "globex-trusted": globex(share_token(4, source=TRUSTED_APP), "dlv-globex-4", region="US"),
    "globex-reference": globex(share_token(5), "dlv-globex-5", reference="GX-123456"),
    "initech-reference": acme(share_token(6), "evt-initech-6", reference="GX-654321"),
    "globex-reference-number": globex(
        share_token(7), "dlv-globex-7", reference=123456, tier=1, customer={"id": "C-1007"}
    ),
    "initech-tier-true": acme(share_token(8), "evt-initech-8", reference="X-1", tier=True),
    "acme-priority": acme(
        share_token(9), "evt-acme-9", region="US", priority={"level": "high"}, vip=True
    ),
    "hooli-anonymous": acme(share_token(10), "evt-hooli-10"),
    "hooli-customer": acme(share_token(11), "evt-hooli-11", customer={"id": "H-11"}),
    "acme-expired": acme(
        share_token(12, iat=1_700_000_000, exp=1_700_003_600),
        "evt-acme-12",
        region="EU",
        customer={"id": "C-1012"},
    ),
    "acme-other-application": acme(
        share_token(13, target=OTHER_APP), "evt-acme-13", region="EU", customer={"id": "C-1013"}
    ),
    "acme-malformed": acme("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", "evt-acme-14", region="EU"),
    "acme-kyb-unresolved": acme(
        share_token(15, kind="business"), "evt-acme-15", region="EU", company={"name": "Acme"}
    ),
    "acme-missing-token": acme(None, "evt-acme-16", region="EU", customer={"id": "C-1016"}),
    "acme-not-an-object": [{"share_token": share_token(17)}],
    "acme-nul-character": acme(
        share_token(18), "evt-acme\x0018", region="EU", customer={"id": "C-1018"}
    ),
}


def main() -> None:
    here = Path(__file__).parent
    for name, body in SAMPLES.items():
        (here / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
