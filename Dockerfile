# polycopy in a container: non-root, the ledger on a volume, config mounted read-only.
#   docker build -t polycopy .
#   docker run -d --name polycopy \
#     -v polycopy-state:/var/lib/polycopy \
#     -v $PWD/config/polycopy.yaml:/etc/polycopy/polycopy.yaml:ro \
#     polycopy
# Reload: docker kill --signal=HUP polycopy. Stop: docker stop (SIGTERM, drained, exit 0).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml requirements-bootstrap.lock requirements-runtime.lock README.md ./
COPY src ./src
# runtime dependencies only from the hashed lock; then the project, resolving nothing
RUN python -m venv /opt/polycopy/.venv \
 && /opt/polycopy/.venv/bin/pip install --no-cache-dir --require-hashes \
        -r requirements-bootstrap.lock \
 && /opt/polycopy/.venv/bin/pip install --no-cache-dir --require-hashes \
        -r requirements-runtime.lock \
 && /opt/polycopy/.venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/polycopy \
        --shell /usr/sbin/nologin polycopy \
 && install -d -o polycopy -g polycopy -m 0700 /var/lib/polycopy \
 && install -d -m 0755 /etc/polycopy
COPY --from=build /opt/polycopy/.venv /opt/polycopy/.venv
COPY config/polycopy.example.yaml /etc/polycopy/polycopy.yaml
ENV PATH=/opt/polycopy/.venv/bin:$PATH \
    POLYCOPY_STATE_DIR=/var/lib/polycopy \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER polycopy:polycopy
WORKDIR /var/lib/polycopy
VOLUME ["/var/lib/polycopy"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=3).status != 200)"]
ENTRYPOINT ["polycopy"]
CMD ["run", "--config", "/etc/polycopy/polycopy.yaml"]
