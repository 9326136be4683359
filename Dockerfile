# syntax=docker/dockerfile:1
# deploy-gate: multi-stage build. Dependencies are compiled in their own layer
# (from Cargo.toml/Cargo.lock only) so code changes rebuild only the crate.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first: a dummy crate with the real manifest, cached until it changes.
COPY Cargo.toml Cargo.lock build.rs ./
# lettre, patched until upstream releases its TCP_NODELAY fix (vendor/lettre).
COPY vendor vendor
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY migrations migrations
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && mkdir -p /data

# Runtime: glibc and CA certificates only, no shell, running as an unprivileged user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/deploy-gate /usr/local/bin/deploy-gate
COPY --from=build --chown=65532:65532 /data /data
WORKDIR /data
ENV DEPLOY_GATE_BIND=0.0.0.0:8000 \
    DEPLOY_GATE_DATABASE_URL=sqlite:///data/deploy-gate.db \
    DEPLOY_GATE_MAIL_DIR=/data/mail \
    DEPLOY_GATE_LOG_FORMAT=json
# The SQLite database (and .eml files when no SMTP server is set) live here.
VOLUME ["/data"]
EXPOSE 8000
# 65532 is distroless's `nonroot` user.
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/deploy-gate", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/deploy-gate"]
CMD ["serve"]
