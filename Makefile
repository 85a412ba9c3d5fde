# intune-cert-operator — kubebuilder-style targets. Everything a target needs is built from Go modules into ./bin.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/certops/intune-cert-operator:$(VERSION)
LDFLAGS := -X github.com/certops/intune-cert-operator/internal/version.Version=$(VERSION)

LOCALBIN := $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
# Set by the control plane script; envtest reads KUBEBUILDER_ASSETS.
K8S_ASSETS = $(shell hack/control-plane.sh)

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/...;./internal/controller/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: control-plane
control-plane: ## Build kube-apiserver, etcd and kubectl from Go modules into bin/k8s (skipped when present).
	hack/control-plane.sh

.PHONY: test
test: generate manifests vet ## Unit and envtest tests (builds the local control plane first if needed).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test ./... -count=1 -timeout 30m

.PHONY: test-e2e
test-e2e: ## End-to-end tests with the real binaries (operator, graphsim, kube-apiserver, etcd, kubectl).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test -tags e2e ./test/e2e/ -count=1 -timeout 20m -v

.PHONY: test-faults
test-faults: ## Faults, crashes and restarts during an import, real binaries (FAULTS_N, FAULTS_SCENARIOS; see docs/reliability.md).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test -tags faults ./test/faults/ -count=1 -timeout 40m -v

.PHONY: bench
bench: ## Benchmark the operator at scale (see docs/performance.md; BENCH_ARGS="-quick" for a short run).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go run ./test/bench $(BENCH_ARGS)

.PHONY: fuzz
fuzz: ## Short fuzz runs of every fuzz target (FUZZTIME=20s each).
	hack/fuzz.sh $(FUZZTIME)

FUZZTIME ?= 20s

##@ Demo

.PHONY: demo
demo: ## The main job on its embedded default: control plane + graphsim + operator + samples (DEMO_ONCE=1 exits).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go run ./hack/demo

##@ Build

.PHONY: build
build: generate manifests ## Build the manager binary.
	CGO_ENABLED=0 go build -ldflags "$(LDFLAGS)" -o bin/manager .

.PHONY: run
run: manifests generate ## Run the operator against the current kubeconfig.
	go run -ldflags "$(LDFLAGS)" . $(ARGS)

$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
