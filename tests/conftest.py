from __future__ import annotations

from hypothesis import HealthCheck, settings

# Speed is measured by the benchmarks, never by tests: on a loaded machine hypothesis's per-example
# deadline and its "generation is slow" check fail correct code, so neither judges a test here.
settings.register_profile(
    "bridge",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("bridge")
