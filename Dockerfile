# patchbay container image: a release build in a Rust image, copied into a slim Debian runtime
# that runs as a non-root user with its SQLite database on the /data volume.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/engine.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY . .
# Make sure cargo sees the real sources as newer than the placeholder build.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin patchbay

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin patchbay \
    && mkdir -p /data /etc/patchbay && chown patchbay:patchbay /data
COPY --from=build /src/target/release/patchbay /usr/local/bin/patchbay
COPY patchbay.example.toml /etc/patchbay/patchbay.toml
ENV PATCHBAY_CONFIG=/etc/patchbay/patchbay.toml \
    DATABASE_URL=sqlite:///data/patchbay.db \
    PATCHBAY_HTTP_LISTEN=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
USER patchbay
# The binary checks itself, so the image needs no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["patchbay", "healthcheck"]
ENTRYPOINT ["patchbay"]
CMD ["run"]
