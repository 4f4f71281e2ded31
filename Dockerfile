# syntax=docker/dockerfile:1
# Build stage: build a wheel so the runtime image carries no build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
# bridge/config/example.yaml links to the example: the schema's descriptions come from it.
COPY config ./config
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels

# Runtime stage: slim base, non-root user, /data volume for the SQLite store.
FROM python:3.11-slim
# Unbuffered output: every log line reaches `docker logs` at once, and none is lost on a stop.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRIDGE_CONFIG=/etc/bridge/bridge.yaml \
    BRIDGE_STORE_URL=sqlite:////data/bridge.db
COPY --from=build /wheels /wheels
# With psycopg (the postgres extra) and the OpenTelemetry SDK (the otel extra): one image runs on
# SQLite or, replicated, on PostgreSQL, and exports traces when `telemetry:` or OTEL_* ask for it.
RUN pip install --no-cache-dir "$(ls /wheels/*.whl)[postgres,otel]" && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data bridge \
    && mkdir -p /data /etc/bridge && chown bridge /data
# An example only: mount your own at /etc/bridge/bridge.yaml (a volume, a ConfigMap).
COPY config/bridge.example.yaml /etc/bridge/bridge.yaml
USER bridge
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["share-bridge", "healthcheck"]
# SIGTERM drains: intake answers 503, in-flight work finishes within 20 s. Stop with a grace
# period above that (`docker stop -t 30`, compose `stop_grace_period: 30s`).
STOPSIGNAL SIGTERM
# Exec form, so SIGTERM reaches the Python process (PID 1) and graceful shutdown runs.
ENTRYPOINT ["share-bridge"]
CMD ["serve"]
