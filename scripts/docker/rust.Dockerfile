# Stand-in for rust:VERSION-slim-bookworm: what the official image brings
# for a build (a C compiler and linker, certificates), with the toolchain
# of the machine that makes it copied into /usr/local/rust, and that
# machine's CA bundle, so that cargo reaches crates.io as the machine does.
ARG BASE
FROM ${BASE}
# Unpinned on purpose: a stand-in follows Debian's bookworm, as the
# official images do.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc --version && cargo --version
