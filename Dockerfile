# syntax=docker/dockerfile:1
#
# Images of custody's cluster (docker-compose.yml). Every binary is static (CGO_ENABLED=0:
# SQLite is modernc.org/sqlite, pure Go) and is built by scripts/cluster.sh build, the
# same build the loopback topology and its test use.
#
#   docker build -t custody .                      custody itself (the last stage)
#   docker build --target nats -t custody-nats .   nats-server, at the version in go.mod
#   docker build --target tools -t custody-tools . certificates, keys, stream provisioning
#
# Runtime images run as non-root users (custody as distroless nonroot, 65532;
# nats-server as 65533) and hold nothing but the binary, CA certificates and an empty
# /data owned by that user (a named volume mounted there starts with its ownership).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 bash scripts/cluster.sh build /out \
 && mkdir -p /out/data

# nats-server with custody's node configuration (deploy/nats/node.conf, accounts.conf);
# the per-node values come from the environment (see node.conf).
FROM gcr.io/distroless/static-debian12:nonroot AS nats
COPY --from=build /out/nats-server /nats-server
COPY deploy/nats/node.conf deploy/nats/accounts.conf /etc/nats/
COPY --from=build --chown=65533:65533 /out/data /data
# Not custody's user: custody processes cannot read the nodes' key.
USER 65533:65533
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server", "-c", "/etc/nats/node.conf"]

# One-off jobs: the CA and node certificate (openssl), custody's signing key and API
# token, and the provisioning of the streams at R3 as the NATS administrator.
FROM alpine:3.22 AS tools
RUN apk add --no-cache bash openssl ca-certificates
COPY --from=build /out/custody /usr/local/bin/
COPY scripts/cluster.sh /usr/local/bin/cluster.sh

# custody.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/custody /custody
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENTRYPOINT ["/custody"]
