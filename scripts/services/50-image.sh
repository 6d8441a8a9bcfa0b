# Sourced by scripts/test.sh. Builds the container image without a Docker engine or a registry
# pull: the static binary is built here with cargo, and Containerfile.prebuilt (the final
# stage of ./Dockerfile, FROM scratch) packs it with buildah. tests/image.rs runs it with podman.
# Exports BCIOPS_IMAGE and BCIOPS_PODMAN.
if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  echo "installing buildah, podman and runc with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc >/dev/null
fi
# The `image` profile (Cargo.toml): the release binary without LTO, so that CI builds it in
# minutes; the Dockerfile keeps the full release profile.
echo "building the static binary (profile image) and the image (first time: a few minutes)" >&2
RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile image --quiet --target x86_64-unknown-linux-gnu
image_ctx="target/services/image-context"
rm -rf "$image_ctx" && mkdir -p "$image_ctx/home"
cp "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/image/bciops" "$image_ctx/bciops"
cp /etc/ssl/certs/ca-certificates.crt "$image_ctx/ca-certificates.crt"
echo 'bciops:x:65532:65532:bciops:/home/bciops:/sbin/nologin' > "$image_ctx/passwd"
buildah bud --quiet --isolation chroot -f Containerfile.prebuilt -t localhost/bciops:test "$image_ctx" >/dev/null
export BCIOPS_IMAGE=localhost/bciops:test
export BCIOPS_PODMAN=podman
