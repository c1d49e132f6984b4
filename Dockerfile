# syntax=docker/dockerfile:1
# Quiver's image: one binary for every role (standalone, coord, datanode,
# querynode, proxy; `quiver --help`). Build with nothing but this file and
# the source tree:
#   docker build -t quiver:0.1.0 .
# Run standalone (data on a volume; pymilvus connects to :19530):
#   docker run -p 19530:19530 -v quiver-data:/var/lib/quiver quiver:0.1.0
# docs/deploy.md has the cluster (Helm chart charts/quiver).

# --- build: the Rust toolchain the workspace pins (rust-version 1.95) ---
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# protoc comes from the protoc-bin-vendored crate; nothing else to install.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p quiver-server --bin quiver \
    && install -D -m 0755 target/release/quiver /out/quiver \
    && mkdir -p /out/data

# --- runtime: glibc and CA certificates only, no shell, non-root ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/quiver /usr/local/bin/quiver
# The data directory, owned by the non-root user (uid/gid 65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/quiver
USER 65532:65532
VOLUME ["/var/lib/quiver"]
# 19530: Milvus gRPC API, status page and /metrics (standalone, proxy);
# 7100 coord, 7200 datanode, 7300 querynode (the chart's defaults).
EXPOSE 19530 7100 7200 7300
ENTRYPOINT ["/usr/local/bin/quiver"]
CMD ["standalone", "--data-dir", "/var/lib/quiver", "--listen", "0.0.0.0:19530"]
