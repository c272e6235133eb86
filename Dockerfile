# syntax=docker/dockerfile:1
# Release image of Conduit: a multi-stage build, dependencies cached in a
# layer of their own, a slim runtime running as a non-root user.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /app

# Dependencies only: this layer is rebuilt when Cargo.toml or Cargo.lock
# change, not when the code does.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src migrations \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/conduit target/release/deps/conduit-* \
              target/release/deps/libconduit-* target/release/.fingerprint/conduit-*

# The code and the migrations it embeds.
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin conduit

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin conduit
COPY --from=build /app/target/release/conduit /usr/local/bin/conduit
USER conduit
ENV CONDUIT_LISTEN=0.0.0.0:8080 \
    CONDUIT_ENV=production
EXPOSE 8080
# No curl in this image: the binary asks its own /ready.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["conduit", "healthcheck"]
CMD ["conduit", "serve"]
