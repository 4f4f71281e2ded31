"""Share tokens as Didit mints them: HS256 JWTs signed with the sandbox's own secret."""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from bridge.sandbox.model import SessionKind

MIN_TTL_S = 60
MAX_TTL_S = 86400
DEFAULT_TTL_S = 3600


class InvalidShareToken(Exception):
    """Not a token this sandbox signed, tampered with, incomplete, or expired."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareClaims:
    session_id: str
    session_kind: SessionKind  # USER when the token carries none (a legacy token)
    from_application_id: str
    for_application_id: str
    iat: int
    exp: int


class ShareTokenSigner:
    """Mints and verifies share tokens. The expiry is checked against the caller's ``now`` (the
    sandbox's injected clock), not the wall clock."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the share-token secret is empty")
        self._secret = secret

    def mint(
        self,
        *,
        session_id: str,
        session_kind: SessionKind | None,
        from_application_id: str,
        for_application_id: str,
        now: float,
        expires_in_s: int,
    ) -> str:
        """``session_kind=None`` mints a legacy token, as before Didit's unified sharing."""
        iat = int(now)
        claims: dict[str, object] = {"session_id": session_id}
        if session_kind is not None:
            claims["session_kind"] = session_kind.value
        claims |= {
            "from_application_id": from_application_id,
            "for_application_id": for_application_id,
            "iat": iat,
            "exp": iat + expires_in_s,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str, *, now: float) -> ShareClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_iat": False,
                    "require": ["session_id", "from_application_id", "for_application_id", "exp"],
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidShareToken(type(exc).__name__) from exc
        session_id, from_id, for_id = (
            claims[name] for name in ("session_id", "from_application_id", "for_application_id")
        )
        try:
            exp = int(claims["exp"])
            iat = int(claims.get("iat", exp))
            kind = SessionKind(claims.get("session_kind", SessionKind.USER.value))
        except (TypeError, ValueError) as exc:
            raise InvalidShareToken("malformed claims") from exc
        if not all(isinstance(value, str) for value in (session_id, from_id, for_id)):
            raise InvalidShareToken("malformed claims")
        if now >= exp:
            raise InvalidShareToken("expired")
        return ShareClaims(
            session_id=session_id,
            session_kind=kind,
            from_application_id=from_id,
            for_application_id=for_id,
            iat=iat,
            exp=exp,
        )
