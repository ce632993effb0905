# syntax=docker/dockerfile:1.7
# The action image: a static fastdeploy binary on the docker CLI image, which
# carries the buildx plugin fastdeploy drives through the runner's mounted
# docker socket. Published by .github/workflows/release.yml; action.yml
# references the published image so no run builds it.

FROM rust:1.89-alpine3.22 AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --bin fastdeploy \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin fastdeploy \
 && cp target/release/fastdeploy /fastdeploy

# Runs as root on purpose: container actions get the runner's docker socket,
# which only root (or the docker group of the host) may use.
# fastdeploy:ignore=DF004
FROM docker:28.3-cli
COPY --from=build /fastdeploy /usr/local/bin/fastdeploy
ENV NO_COLOR=1
ENTRYPOINT ["/usr/local/bin/fastdeploy"]
