# rotary in a container: `docker build -t rotary .` then
#   docker run -p 8000:8000 -v $PWD/config.json:/rotary/config.json rotary
# The server runs as an unprivileged user, reads /rotary/config.json when present (CENTRIFUGO_*
# variables override its keys), and serves the health endpoint that HEALTHCHECK polls.
# `docker kill -s HUP` reloads the config as SIGHUP does on a host.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN python -m venv /opt/rotary \
    && /opt/rotary/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt ".[all]" \
    && /opt/rotary/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim-bookworm
ARG UID=1000
ARG GID=1000
RUN groupadd --system --gid "$GID" rotary \
    && useradd --system --uid "$UID" --gid rotary --home-dir /rotary --no-create-home rotary \
    && install -d -o rotary -g rotary /rotary
COPY --from=build /opt/rotary /opt/rotary
ENV PATH=/opt/rotary/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CENTRIFUGO_HEALTH_ENABLED=true
USER rotary
WORKDIR /rotary
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CENTRIFUGO_HTTP_SERVER_PORT', '8000') + '/health', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["rotary"]
