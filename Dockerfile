# Remora's container image: a static-ish release build on a distroless, non-root base.
#   docker build -t remora .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p remora \
 && cp target/release/remora /remora

# glibc, CA certificates and nothing else; runs as uid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /remora /usr/local/bin/remora
USER 65532:65532
EXPOSE 8080 8443 10254
ENTRYPOINT ["/usr/local/bin/remora"]
CMD ["controller"]
