# ferrolb: one static binary (`ferrolb controller`, `ferrolb speaker`, `ferrolb config check`, ...).
#
#   docker build -t ghcr.io/ferrolb/ferrolb:0.1.0 .
#
# The build runs the same `cargo build --release -p ferrolb` as the tests' release builds, against the
# committed Cargo.lock (--locked), for the musl target so the runtime image needs no libc.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferrolb --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/ferrolb /ferrolb

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /ferrolb /usr/bin/ferrolb
# 65532 (nonroot). The speaker's DaemonSet overrides the user (uid 0, no capabilities): see manifests/speaker.yaml.
USER 65532:65532
EXPOSE 7472
ENTRYPOINT ["/usr/bin/ferrolb"]
