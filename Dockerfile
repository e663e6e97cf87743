# One image for every Rebook process: worker, starter (serve, schedule, sim, ...)
# and the pinned Temporal CLI for a dev server.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY tools/go.mod tools/go.sum tools/
RUN go mod download && go mod download -modfile=tools/go.mod
COPY . .
RUN CGO_ENABLED=0 go build -o /out/starter ./starter \
 && CGO_ENABLED=0 go build -modfile=tools/go.mod -o /out/temporal github.com/temporalio/cli/cmd/temporal \
 && if [ -d worker ]; then CGO_ENABLED=0 go build -o /out/worker ./worker; fi \
 && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# A named volume mounted here starts with this ownership, so the Temporal
# dev server can write its SQLite file as nonroot.
COPY --from=build --chown=65532:65532 /data /data
USER nonroot
ENTRYPOINT ["/usr/local/bin/starter"]
