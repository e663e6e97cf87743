# One image for every Rebook process: worker, starter (serve, schedule,
# migrate, sim, ...), the pinned Temporal CLI (its dev server, for the
# demo), and the pinned Temporal server with its SQL tool and schemas
# (docker compose runs it on PostgreSQL; deploy/temporal/cluster.yaml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY tools/go.mod tools/go.sum tools/
COPY tools/temporal-server/go.mod tools/temporal-server/go.sum tools/temporal-server/
RUN go mod download && go mod download -modfile=tools/go.mod && cd tools/temporal-server && go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/starter ./starter \
 && CGO_ENABLED=0 go build -o /out/worker ./worker \
 && CGO_ENABLED=0 go build -modfile=tools/go.mod -o /out/temporal github.com/temporalio/cli/cmd/temporal \
 && cd tools/temporal-server \
 && CGO_ENABLED=0 go build -o /out/temporal-server go.temporal.io/server/cmd/server \
 && CGO_ENABLED=0 go build -o /out/temporal-sql-tool go.temporal.io/server/cmd/tools/sql \
 && mkdir -p /etc-temporal && cp -r "$(go list -m -f '{{.Dir}}' go.temporal.io/server)/schema" /etc-temporal/schema \
 && cp /src/deploy/temporal/cluster.yaml /src/deploy/temporal/dynamicconfig.yaml /etc-temporal/ \
 && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /etc-temporal/ /etc/temporal/
# A named volume mounted here starts with this ownership, so the Temporal
# dev server can write its SQLite file as nonroot.
COPY --from=build --chown=65532:65532 /data /data
USER nonroot
ENTRYPOINT ["/usr/local/bin/starter"]
