# The bciops image: one static binary on `scratch`, run as a non-root user.
#   docker build -t bciops .
#   docker run --rm bciops --version
# Where base images cannot be pulled (this project's CI), scripts/services/50-image.sh builds
# the same final stage from Containerfile.prebuilt and a binary built on the host.

# Build: a fully static glibc binary (no C/Fortran LAPACK is linked; aws-lc/ring build with
# crt-static).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY configs configs
COPY benches benches
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/bciops /bciops \
 && /bciops --version
# CA certificates for TLS to MLflow and object storage, and a passwd entry for the user.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && echo 'bciops:x:65532:65532:bciops:/home/bciops:/sbin/nologin' > /passwd \
 && mkdir -p /home/bciops

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /passwd /etc/passwd
COPY --from=build --chown=65532:65532 /home/bciops /home/bciops
COPY --from=build /bciops /usr/local/bin/bciops
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt HOME=/home/bciops NO_PROGRESS=1
USER 65532:65532
WORKDIR /home/bciops
EXPOSE 3000
ENTRYPOINT ["bciops"]
CMD ["--help"]
