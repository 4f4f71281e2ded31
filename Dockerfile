# syntax=docker/dockerfile:1
# Build stage: build a wheel so the runtime image carries no build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels

# Runtime stage: slim base, non-root user, /data volume for the SQLite store.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRIDGE_CONFIG=/etc/bridge/bridge.yaml
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data bridge \
    && mkdir -p /data /etc/bridge && chown bridge /data
COPY config/bridge.example.yaml /etc/bridge/bridge.yaml
USER bridge
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["bridge", "healthcheck"]
# Exec form, so SIGTERM reaches the Python process and graceful shutdown runs.
ENTRYPOINT ["bridge"]
CMD ["serve"]
