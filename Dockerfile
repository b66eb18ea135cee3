# imagegate: a static binary (CGO_ENABLED=0) on distroless, non-root.
# CI builds the same binary with `make build` (CGO_ENABLED=0 go build -trimpath).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# docker build --build-arg VERSION=v1.2.0 --build-arg REVISION=$(git rev-parse HEAD):
# the build context has no .git, so Go cannot stamp the revision itself.
ARG VERSION=
ARG REVISION=
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
    -ldflags "-s -w -X github.com/imagegate/imagegate/internal/version.Version=${VERSION} -X github.com/imagegate/imagegate/internal/version.Revision=${REVISION}" \
    -o /out/imagegate ./cmd/imagegate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imagegate /usr/local/bin/imagegate
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/imagegate"]
CMD ["serve", "--help"]
