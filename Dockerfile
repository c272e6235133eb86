# Release image of Conduit: a multi-stage build, dependencies cached in a
# layer of their own, a slim runtime running as a non-root user.
#
# The base images are build arguments so that a machine without access to
# a registry can build on local stand-ins (scripts/docker/base-images.sh);
# everyone else gets the official images.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /app
# Without its symbol table the binary is a sixth smaller; a backtrace from
# the image then shows addresses, to be read against a build of the commit.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# Dependencies only: this layer is rebuilt when Cargo.toml or Cargo.lock
# change, not when the code does.
# build.rs reads these two besides migrations/, which may be empty here.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src/db/migrations/source_rules.rs src/db/migrations/expected_schema.txt src/db/migrations/
RUN mkdir -p migrations \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/conduit target/release/deps/conduit-* \
              target/release/deps/libconduit-* target/release/.fingerprint/conduit-*

# The code and the migrations it embeds.
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin conduit

FROM ${RUNTIME_IMAGE} AS runtime
RUN groupadd --system --gid 10001 conduit \
    && useradd --system --uid 10001 --gid conduit --no-create-home --shell /usr/sbin/nologin conduit
COPY --from=build /app/target/release/conduit /usr/local/bin/conduit
# Numeric, so that an orchestrator can verify it is not root without
# reading the image's /etc/passwd.
USER 10001:10001
ENV CONDUIT_LISTEN=0.0.0.0:8080 \
    CONDUIT_ENV=production
EXPOSE 8080
# No curl in this image: the binary asks its own /ready. The start period
# covers waiting for the database and applying migrations.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["conduit", "healthcheck"]
CMD ["conduit", "serve"]
