# syntax=docker/dockerfile:1
#
# tombstone: PostgreSQL wire-protocol proxy.
#
#   docker build -t tombstone .
#   docker run --rm -p 6432:6432 \
#     -v "$PWD/rules.toml:/etc/tombstone/rules.toml:ro" tombstone
#
# Inside a container the proxy must listen on 0.0.0.0:6432 (not the
# 127.0.0.1 default) and point at an upstream host other than 127.0.0.1, so
# mount a rules.toml that says so over /etc/tombstone/rules.toml.
# `docker compose up` (docker-compose.yml) runs this image as the demo,
# beside PostgreSQL 15 with the reference scenario.

# ---- build -----------------------------------------------------------------
FROM rust:1-bookworm AS builder

# libclang for bindgen (the pg_query crate's build script).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
COPY . .
RUN cargo build --release --locked --bin tombstone \
    && strip target/release/tombstone

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system tombstone \
    && useradd --system --gid tombstone --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin tombstone

COPY --from=builder /build/target/release/tombstone /usr/local/bin/tombstone
# The commented example config; replace it with a mounted one.
COPY --chown=root:root rules.toml /etc/tombstone/rules.toml

USER tombstone
EXPOSE 6432
ENTRYPOINT ["tombstone"]
CMD ["serve", "--config", "/etc/tombstone/rules.toml"]
