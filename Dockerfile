# syntax=docker/dockerfile:1
#
# The `doorstep` binary (gateway, pipelines, replay, ...) in a small non-root image.
#
#   docker build -t doorstep:local .
#   docker run --rm doorstep:local --help
#
# The builder's Rust version must be at least the workspace's `rust-version` (Cargo.toml);
# tests/tests/deployment.rs checks it.

# ---------------------------------------------------------------- build
FROM rust:1.95-bookworm AS builder

# rdkafka builds its bundled librdkafka with ./configure + make and links zlib; zstd is
# compiled from source by zstd-sys. No OpenSSL: TLS is rustls. The Rust image (Debian's
# buildpack-deps) already carries these; installing them names them. Debian package
# versions are not pinned (DL3008): bookworm's archive only moves by security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Cache mounts keep the registry and the target directory between builds (BuildKit), so a
# source change recompiles only Doorstep's crates. --locked: exactly Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p doorstep-pipelines --bin doorstep \
    && install -m 0755 target/release/doorstep /usr/local/bin/doorstep

# ---------------------------------------------------------------- run
FROM debian:bookworm-slim

# ca-certificates: HTTPS to push providers and payment APIs (rustls reads the system roots).
# curl: the container health check (GET /healthz). zlib1g: librdkafka's compression.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 doorstep \
    && useradd --system --uid 10001 --gid doorstep --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin doorstep

COPY --from=builder /usr/local/bin/doorstep /usr/local/bin/doorstep

# In a container both listeners must accept connections from outside (the defaults are
# loopback); logs as JSON lines for the log collector.
ENV DOORSTEP_GATEWAY_LISTEN=0.0.0.0:8080 \
    DOORSTEP_OPS_LISTEN=0.0.0.0:9100 \
    DOORSTEP_LOG_FORMAT=json

USER 10001:10001

# 8080: gateway HTTP + WebSocket. 9100: /metrics and /healthz (every process).
EXPOSE 8080 9100

ENTRYPOINT ["doorstep"]
CMD ["--help"]
