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
	hack/sync-chart.sh

.PHONY: chart
chart: ## Copy config/'s CRDs, RBAC rules, alerts and dashboard into the Helm chart (make manifests does too).
	hack/sync-chart.sh

.PHONY: helm-lint
helm-lint: chart ## helm lint --strict the chart in both scopes (helm is built from its Go module into bin/).
	for scope in cluster namespace; do $$(hack/tool.sh helm) lint --strict charts/intune-cert-operator --set scope=$$scope; done

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: verify
verify: generate manifests fmt ## Fail when generate, manifests, fmt or go mod tidy change anything (run on a committed tree).
	go mod tidy
	git diff --exit-code || { echo "make verify: the files above changed: commit what generate, manifests, fmt and go mod tidy wrote" >&2; exit 1; }
	untracked=$$(git ls-files --others --exclude-standard -- api config charts); \
	if [[ -n $$untracked ]]; then echo "make verify: generated files not in git: $$untracked" >&2; exit 1; fi

.PHONY: lint
lint: ## golangci-lint run (.golangci.yml; built from its Go module into bin/ by hack/tool.sh).
	"$$(hack/tool.sh golangci-lint)" run ./...

# govulncheck needs its vulnerability database: https://vuln.go.dev, or a copy, VULNCHECK_DB=file:///path.
VULNCHECK_DB ?= https://vuln.go.dev

.PHONY: vulncheck
vulncheck: ## govulncheck ./... (built into bin/); FAILS when the vulnerability database is unreachable (VULNCHECK_DB).
	hack/vulncheck.sh $(VULNCHECK_DB)

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
build: generate manifests ## Build the manager binary and the kubectl plugin (bin/kubectl-certops).
	CGO_ENABLED=0 go build -ldflags "$(LDFLAGS)" -o bin/manager .
	CGO_ENABLED=0 go build -ldflags "$(LDFLAGS)" -o bin/kubectl-certops ./cmd/kubectl-certops

.PHONY: docker-build
docker-build: ## Build the operator image IMG with docker (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the operator image IMG.
	docker push $(IMG)

##@ Deployment

# kubectl of the current kubeconfig; kustomize is built from its Go module into bin/ (hack/tool.sh).
KUBECTL ?= kubectl
DEPLOY_CONFIG ?= config/default

.PHONY: deploy
deploy: manifests ## Install the CRDs and the operator with image IMG into the current cluster (DEPLOY_CONFIG=config/namespaced for one namespace).
	mkdir -p bin/deploy
	img='$(IMG)'; printf 'resources:\n- ../../$(DEPLOY_CONFIG)\nimages:\n- name: ghcr.io/certops/intune-cert-operator\n  newName: %s\n  newTag: %s\n' \
		"$${img%:*}" "$${img##*:}" > bin/deploy/kustomization.yaml
	$$(hack/tool.sh kustomize) build bin/deploy | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove what deploy installed, CRDs (and so every resource) included; ignore-not-found.
	$$(hack/tool.sh kustomize) build $(DEPLOY_CONFIG) | $(KUBECTL) delete --ignore-not-found=true -f -

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
