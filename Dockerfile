# patchbay's container image: a release build, run from `scratch` as a non-root user, with its
# SQLite database on the /data volume and its config in /config.
#
#   docker build -t patchbay .                  (podman: podman build --format docker -t patchbay .)
#   docker run -d -p 127.0.0.1:8080:8080 -v patchbay-data:/data -v "$PWD/config:/config:ro" --env-file .env patchbay
#
# README "Self-hosting" says how to run, upgrade and back it up; ARCHITECTURE.md "Container
# image and packaging" says why it is built this way, with its measured size;
# scripts/container-smoke.sh builds it and proves it (start, health, SIGTERM, the volume).
#
# The one base image that is pulled is an argument, so a mirror or a local image can stand in:
#   --build-arg RUST_IMAGE=mirror.example.com/library/rust:1.95-bookworm
# It must be Debian bookworm (or have its glibc): the binary's shared libraries are copied from
# it. The runtime is `scratch`, which is pulled from nowhere, so it is not an argument: its
# files are laid out for an empty root, and on a distribution's image the /lib and /lib64
# directories would replace the symlinks a merged /usr keeps there.
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Without its symbol table the binary is 7.4 MB smaller (31.7 MB, not 39.1), which keeps the image
# under 40 MB. A panic still names its file and line; a backtrace shows addresses only.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# Dependencies first, from the manifest and the lock file alone: every target Cargo.toml names
# gets a placeholder source (scripts/stub-targets.sh), the dependencies are compiled, and
# patchbay's own placeholder build is thrown away. This layer is reused until Cargo.toml or
# Cargo.lock changes, so a code change recompiles patchbay only.
COPY Cargo.toml Cargo.lock ./
COPY scripts/stub-targets.sh /usr/local/bin/stub-targets
RUN sh /usr/local/bin/stub-targets Cargo.toml \
    && cargo build --release --locked --bin patchbay \
    && cargo clean --release --locked --package patchbay

COPY . .
RUN cargo build --release --locked --bin patchbay

# The runtime's files, laid out as the image will have them: the binary; the shared libraries it
# links (glibc, libgcc) and their loader, at the paths it asks for; the public CA bundle; the
# example config as the default /config/patchbay.toml (a mounted /config replaces it); /tmp for
# SQLite's temporary files. The last line runs the binary with nothing but these files.
RUN set -eu; \
    mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/config /rootfs/tmp /data; \
    cp target/release/patchbay /rootfs/usr/local/bin/patchbay; \
    for lib in $(ldd target/release/patchbay | grep -o '/[^ ]*'); do \
        cp -L --parents "$lib" /rootfs; \
    done; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    cp patchbay.example.toml /rootfs/config/patchbay.toml; \
    chmod 1777 /rootfs/tmp; \
    chroot /rootfs /usr/local/bin/patchbay --version

FROM scratch
# Kept equal to Cargo.toml's version by tests/docs.rs. SOURCE_URL is where the code is published.
ARG VERSION=0.1.0
ARG SOURCE_URL=
LABEL org.opencontainers.image.title="patchbay" \
      org.opencontainers.image.description="A self-hosted Discord chat-ops control plane for a team's integrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}"

COPY --from=build /rootfs /
COPY --from=build --chown=10001:10001 /data /data

# Inside the container patchbay listens on every address, so the published port reaches it;
# these override the config file's [storage].url and [http].listen.
ENV PATCHBAY_CONFIG=/config/patchbay.toml \
    DATABASE_URL=sqlite:///data/patchbay.db \
    PATCHBAY_HTTP_LISTEN=0.0.0.0:8080

# A numeric user needs no /etc/passwd. A new named volume takes /data's owner from the image.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# patchbay is PID 1 and handles SIGTERM itself: checks in flight finish (up to
# [scheduler].shutdown_timeout), pending results are written, the database is closed, exit 0.
STOPSIGNAL SIGTERM
# The binary asks its own /healthz, so the image needs no shell or curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/patchbay", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/patchbay"]
CMD ["run"]
