# careloop's container image: docs/operations.md, "Running it".
#   docker build -t careloop .
# The image runs `careloop serve` as an unprivileged user, in production mode, logging JSON lines. The master
# key is never baked in: mount it as a secret file (CARELOOP_KEY_FILE, mode 0600, owned by uid 10001).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/careloop
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY audit ./audit
COPY core ./core
COPY migrations ./migrations
COPY models ./models
COPY policies ./policies
COPY resolvers ./resolvers
COPY schema ./schema
# The runtime dependencies only: no test, lint or type-checking tools (those are the "dev" extra).
RUN /opt/careloop/bin/pip install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/careloop/bin:$PATH \
    CARELOOP_ENV=production \
    CARELOOP_HOST=0.0.0.0 \
    CARELOOP_PORT=8000 \
    CARELOOP_KEY_FILE=/run/secrets/careloop_master_key \
    CARELOOP_ATTACHMENT_DIR=/var/lib/careloop/attachments \
    CARELOOP_LOG_FORMAT=json
RUN groupadd --system --gid 10001 careloop \
 && useradd --system --uid 10001 --gid careloop --home-dir /var/lib/careloop --shell /usr/sbin/nologin careloop \
 && install -d -o careloop -g careloop -m 0700 /var/lib/careloop /var/lib/careloop/attachments
COPY --from=build /opt/careloop /opt/careloop
USER careloop:careloop
WORKDIR /var/lib/careloop
VOLUME ["/var/lib/careloop/attachments"]
# 8000: the API, behind the TLS-terminating proxy. 9464: Prometheus metrics, when CARELOOP_METRICS_PORT=9464.
EXPOSE 8000 9464
# /healthz answers while the process serves; /readyz (database, migrations, keys) is for the load balancer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CARELOOP_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["careloop"]
CMD ["serve", "--workers", "2"]
