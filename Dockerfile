# syntax=docker/dockerfile:1
# The manager image. The builder runs on the build machine's platform and cross-compiles for the target one,
# so a multi-platform build needs no emulation:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) -t ghcr.io/certops/intune-cert-operator:<tag> .
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
# Set by BuildKit from --platform.
ARG TARGETOS
ARG TARGETARCH
# Reported by the manager at start-up and in its User-Agent.
ARG VERSION=dev

WORKDIR /workspace
# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY main.go main.go
COPY api/ api/
COPY internal/ internal/

# Static binary (the final image has no libc), no local paths in it, no symbol tables.
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/certops/intune-cert-operator/internal/version.Version=${VERSION}" \
      -o /manager .

# No shell, no package manager; CA certificates for Graph and Entra ID are included (the system pool, so
# SSL_CERT_FILE can add a private CA).
FROM gcr.io/distroless/static:nonroot
COPY --from=builder /manager /manager
# Numeric, so that the pod's runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/manager"]
