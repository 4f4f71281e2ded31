"""The sandbox's parts on their own: tokens, the fault plan, the world, the clock."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from bridge.sandbox import FaultSpec, World, build_starter_world, create_app
from bridge.sandbox.faults import decide
from bridge.sandbox.model import SessionKind, WorkflowKind
from bridge.sandbox.share_tokens import InvalidShareToken, ShareTokenSigner

SECRET = b"k" * 32


def _mint(signer: ShareTokenSigner, **overrides: object) -> str:
    fields: dict[str, object] = {
        "session_id": "s",
        "session_kind": SessionKind.BUSINESS,
        "from_application_id": "a",
        "for_application_id": "b",
        "now": 1000.0,
        "expires_in_s": 60,
    } | overrides
    return signer.mint(**fields)  # type: ignore[arg-type]


class TestShareTokens:
    def test_round_trip(self) -> None:
        """What is minted verifies, with its claims, until exp."""
        signer = ShareTokenSigner(SECRET)

        claims = signer.verify(_mint(signer), now=1059.0)

        assert (claims.session_id, claims.session_kind) == ("s", SessionKind.BUSINESS)
        assert (claims.iat, claims.exp) == (1000, 1060)
        with pytest.raises(InvalidShareToken):
            signer.verify(_mint(signer), now=1060.0)

    def test_a_legacy_token_is_a_user_token(self) -> None:
        """No session_kind claim means user."""
        signer = ShareTokenSigner(SECRET)

        assert (
            signer.verify(_mint(signer, session_kind=None), now=0).session_kind is SessionKind.USER
        )

    @pytest.mark.parametrize(
        "claims",
        [
            {"session_id": "s", "from_application_id": "a", "exp": 9999},
            {"session_id": 5, "from_application_id": "a", "for_application_id": "b", "exp": 9999},
            {
                "session_id": "s",
                "session_kind": "robot",
                "from_application_id": "a",
                "for_application_id": "b",
                "exp": 9999,
            },
        ],
    )
    def test_incomplete_or_odd_claims_are_invalid(self, claims: dict[str, object]) -> None:
        """A missing id, a non-string id or an unknown kind: invalid, even when signed."""
        token = jwt.encode(claims, SECRET, algorithm="HS256")

        with pytest.raises(InvalidShareToken):
            ShareTokenSigner(SECRET).verify(token, now=0)

    def test_garbage_and_other_keys_are_invalid(self) -> None:
        """Not a JWT, or signed with another key."""
        signer = ShareTokenSigner(SECRET)
        other = ShareTokenSigner(b"o" * 32)

        for token in ("", "a.b.c", _mint(other)):
            with pytest.raises(InvalidShareToken):
                signer.verify(token, now=0)

    def test_an_empty_secret_is_refused(self) -> None:
        """A signer needs a key."""
        with pytest.raises(ValueError, match="empty"):
            ShareTokenSigner(b"")


class TestDecide:
    def test_is_a_function_of_seed_endpoint_index_and_spec(self) -> None:
        """Same inputs, same decision; the endpoint and seed change the draw."""
        spec = FaultSpec(error_rate=0.5, jitter_ms=10)

        first = [decide(1, "import", i, spec) for i in range(50)]

        assert first == [decide(1, "import", i, spec) for i in range(50)]
        assert first != [decide(1, "list", i, spec) for i in range(50)]
        assert first != [decide(2, "import", i, spec) for i in range(50)]

    def test_labels(self) -> None:
        """No fault has no label; latency alone is labelled latency."""
        assert decide(1, "import", 0, FaultSpec()).label is None
        assert decide(1, "import", 0, FaultSpec(latency_ms=1)).label == "latency"
        assert decide(1, "import", 0, FaultSpec(throttle_rate=1)).label == "throttle_429"


class TestWorld:
    def test_demo_is_deterministic_from_its_seed(self) -> None:
        """Same seed, same ids, keys and sessions; another seed, others."""
        one, same, other = build_starter_world(3), build_starter_world(3), build_starter_world(4)

        assert list(one.applications) == list(same.applications)
        assert list(one.sessions) == list(same.sessions)
        assert one.share_token_secret == same.share_token_secret
        assert set(one.applications).isdisjoint(other.applications)

    def test_names_and_keys_are_unique(self) -> None:
        """A second application with a taken name or key is refused."""
        world = World(seed=1)
        world.add_application("x", api_key="sbx_fixed_key")

        with pytest.raises(ValueError, match="named"):
            world.add_application("x")
        with pytest.raises(ValueError, match="key"):
            world.add_application("y", api_key="sbx_fixed_key")
        with pytest.raises(KeyError):
            world.workflow_of_kind(world.application_named("x").id, WorkflowKind.KYC)

    def test_an_entity_per_vendor_data_and_kind(self) -> None:
        """Two sessions with one vendor_data share their entity."""
        world = World(seed=1)
        app = world.add_application("x")
        kyc = world.add_workflow(app.id, WorkflowKind.KYC)
        first = world.add_session(
            app.id, workflow_id=kyc.id, status="Approved", created_at=0, vendor_data="v"
        )
        second = world.add_session(
            app.id, workflow_id=kyc.id, status="Approved", created_at=1, vendor_data="v"
        )

        assert first.entity_id == second.entity_id is not None
        assert world.delete_session(first.id)
        assert not world.delete_session(first.id)


class TestInjectedClock:
    def test_token_expiry_follows_the_sandbox_clock(self) -> None:
        """A token minted at t expires at t+ttl on the sandbox's clock, not the wall clock."""
        now = [2_000_000_000.0]
        world = build_starter_world(1)
        app = create_app(world, seed=1, clock=lambda: now[0])
        ours = world.application_named("ours")
        acme = world.application_named("acme")
        source = next(s for s in world.sessions_of(acme.id) if s.status == "Approved")
        kyc = world.workflow_of_kind(ours.id, WorkflowKind.KYC)

        async def scenario() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
                minted = await client.post(
                    "/_sandbox/tokens",
                    json={
                        "session_id": source.id,
                        "for_application_id": ours.id,
                        "ttl_in_seconds": 60,
                    },
                )
                body = {
                    "share_token": minted.json()["share_token"],
                    "workflow_id": kyc.id,
                    "trust_review": False,
                }
                now[0] += 61
                late = await client.post(
                    "/v3/session/import-shared/", json=body, headers={"x-api-key": ours.api_key}
                )
                return [minted.status_code, late.status_code]

        assert asyncio.run(scenario()) == [200, 401]
