# syntax=docker/dockerfile:1
#
# mcp-bridge with Node.js 22 (npx) and Python 3 with uv (uvx), so the usual stdio MCP servers
# run out of the box. Build and run (the token is required: the bridge listens on 0.0.0.0):
#
#   docker build -t mcp-bridge .
#   export MCP_BRIDGE_AUTH_TOKEN=$(openssl rand -hex 32)
#   docker run --rm -p 8000:8000 -e MCP_BRIDGE_AUTH_TOKEN mcp-bridge
#   docker run --rm -p 8000:8000 -e MCP_BRIDGE_AUTH_TOKEN mcp-bridge -- uvx mcp-server-time
#
# Arguments after the image name are the bridge's (the default is --demo); the server's command
# goes after `--`. Subcommands need the entrypoint replaced:
#   docker run --rm --entrypoint mcp-bridge mcp-bridge doctor -- npx -y @modelcontextprotocol/server-everything

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/mcp-bridge /usr/local/bin/mcp-bridge

FROM node:22-bookworm-slim
# uv (and uvx) from PyPI, in a virtual environment of its own (Debian's Python refuses
# `pip install` into the system, PEP 668); only the two binaries go on PATH.
ARG UV_VERSION=0.13.9
# tini runs as PID 1: it forwards SIGTERM to the bridge and reaps the orphans that servers
# started through npx or uvx leave behind when they stop. Debian packages are not pinned
# (bookworm's point releases replace old versions); uv is.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv tini \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
    && ln -s /opt/uv/bin/uv /opt/uv/bin/uvx /usr/local/bin/ \
    && groupadd --gid 10001 mcp \
    && useradd --uid 10001 --gid mcp --create-home --home-dir /home/mcp --shell /usr/sbin/nologin mcp
COPY --from=build /usr/local/bin/mcp-bridge /usr/local/bin/mcp-bridge

# npx and uvx download servers into caches under HOME (~/.npm, ~/.cache/uv, ~/.local/share/uv):
# mount a volume on /home/mcp to keep them across restarts.
USER 10001:10001
WORKDIR /home/mcp
ENV HOME=/home/mcp \
    PYTHONUNBUFFERED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    MCP_BRIDGE_HEALTHCHECK_URL=http://127.0.0.1:8000/readyz

EXPOSE 8000
# /readyz answers 200 once every server has completed its handshake (no token needed). With
# --port N, set MCP_BRIDGE_HEALTHCHECK_URL=http://127.0.0.1:N/readyz; it speaks plain HTTP only,
# so with --tls-cert run the container with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["mcp-bridge", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "mcp-bridge", "--host", "0.0.0.0"]
CMD ["--demo"]
