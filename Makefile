# `make help` lists the targets. Every variable below can be overridden on the
# command line, e.g. `make tools GO=go1.26` or `make test OUTPUT=/tmp/out`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
TEST_CC ?= gcc
BUSYBOX ?= /bin/busybox
PKG_CONFIG ?= pkg-config

# Output layout: everything generated goes under $(OUTPUT) (gitignored).
OUTPUT ?= _output
BIN_DIR ?= $(OUTPUT)/bin
FP_BIN_DIR ?= $(OUTPUT)/bin-fp
TOOLS_DIR ?= $(OUTPUT)/tools/bin
ROOTFS ?= $(OUTPUT)/rootfs
INTEGRATION_LOG ?= $(OUTPUT)/integration.log

# The shim: a static, stripped binary.
SHIM := containerd-shim-rt-v2
GO_BUILD_FLAGS ?= -trimpath
GO_LDFLAGS ?= -s -w -extldflags=-static

# Tests.
GO_TEST_FLAGS ?= -count=1
INTEGRATION_TIMEOUT ?= 20m
INTEGRATION_RUN ?=
# Lifecycles of `make soak`.
N ?= 500
# Benchmarks (make bench): rounds of BenchmarkLifecycle, output file.
BENCH_ROUNDS ?= 30
BENCH_TIMEOUT ?= 30m
BENCH_LOG ?= $(OUTPUT)/bench.txt

# Third-party binaries for the integration tests, built from the versions
# pinned in tools/go.mod (a separate module: the root module's own containerd
# version is the library the shim links, not the daemon it is tested with).
TOOLS_DEPS := tools/go.mod tools/go.sum
TOOL_BINS := $(addprefix $(TOOLS_DIR)/,containerd ctr containerd-shim-runc-v2 runc)
# Recursively expanded: `go list` only runs when a tools recipe needs it.
CONTAINERD_VERSION = $(shell cd tools && $(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
CONTAINERD_LDFLAGS = -s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
# runc needs cgo; seccomp support only when libseccomp's headers are there
# (hack/install-deps.sh tries to install them).
RUNC_TAGS = urfave_cli_no_docs $(shell $(PKG_CONFIG) --exists libseccomp 2>/dev/null && echo seccomp)

# Compatibility matrix (make test-compat): a subset of the integration tests
# against every combination of the newest and the oldest containerd the shim
# supports (tools/go.mod's, and 2.0 from tools/containerd-2.0/go.mod) and of
# runc 1.5 (tools/go.mod's) and Debian's runc 1.1, which predates
# process.scheduler: apply mode must not depend on the runtime.
TOOLS_20_DIR ?= $(OUTPUT)/tools-2.0/bin
TOOLS_20_DEPS := tools/containerd-2.0/go.mod tools/containerd-2.0/go.sum
TOOL_20_BINS := $(addprefix $(TOOLS_20_DIR)/,containerd ctr containerd-shim-runc-v2)
CONTAINERD_20_VERSION = $(shell cd tools/containerd-2.0 && $(GO) list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
CONTAINERD_20_LDFLAGS = -s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_20_VERSION)
# Debian's runc package, unpacked here (not installed).
DEBIAN_RUNC_DIR ?= $(OUTPUT)/runc-debian
DEBIAN_RUNC := $(DEBIAN_RUNC_DIR)/usr/sbin/runc
# Combinations: <dir of containerd and ctr>,<runc>.
COMPAT_MATRIX ?= $(TOOLS_DIR),$(TOOLS_DIR)/runc $(TOOLS_20_DIR),$(TOOLS_DIR)/runc \
	$(TOOLS_DIR),$(DEBIAN_RUNC) $(TOOLS_20_DIR),$(DEBIAN_RUNC)
COMPAT_RUN ?= ^(TestSmokeStockRuntime|TestDropIn|TestPolicyAtFirstInstruction|TestGrantMode|TestBudgets|TestBadInput|TestQuotaExemption|TestExecPolicy|TestDeadline|TestShimKilled|TestUpdateKeepsExemption|TestRuncOptionsForm|TestContribContainerdConfig|TestTTY)$$
# Not run with a runc that predates process.scheduler: an RT exec policy is
# then set only after the exec'd process started (docs/design.md, Known limits).
COMPAT_OLD_RUNC_SKIP ?= ^TestExecPolicy$$
COMPAT_LOG_DIR ?= $(OUTPUT)/compat

# The container root filesystem: busybox plus the C test programs.
TESTDATA_SRCS := $(wildcard integration/testdata/*.c)
TESTDATA_BINS := $(patsubst integration/testdata/%.c,$(ROOTFS)/bin/%,$(TESTDATA_SRCS))
ROOTFS_STAMP := $(OUTPUT)/rootfs.stamp

# Packages for unit tests: everything but the integration tests, which need
# root and the binaries above (run by `make integration`).
UNIT_PKGS = $(shell $(GO) list -e ./... | grep -v '/integration')

.PHONY: help build build-fp tools tools-compat rootfs demo deps test test-unit test-compat integration soak lint clean

##@ Build

build: ## build the shim, the runc-rt wrapper and the rtshim CLI (doctor, status) into _output/bin
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS)' -o $(BIN_DIR)/$(SHIM) ./cmd/$(SHIM)
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS)' -o $(BIN_DIR)/rtshim ./cmd/rtshim
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS)' -o $(BIN_DIR)/runc-rt ./cmd/runc-rt

build-fp: ## build the shim with failpoints (crash-safety tests only) into _output/bin-fp
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -tags failpoints -ldflags '$(GO_LDFLAGS)' -o $(FP_BIN_DIR)/$(SHIM) ./cmd/$(SHIM)

tools: $(TOOL_BINS) ## build containerd, ctr, the runc shim and runc (tools/go.mod versions) into _output/tools/bin

$(TOOLS_DIR)/containerd $(TOOLS_DIR)/ctr $(TOOLS_DIR)/containerd-shim-runc-v2: $(TOOLS_DEPS)
	@mkdir -p $(@D)
	cd tools && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(CONTAINERD_LDFLAGS)' \
		-o $(abspath $@) github.com/containerd/containerd/v2/cmd/$(@F)

$(TOOLS_DIR)/runc: $(TOOLS_DEPS)
	@mkdir -p $(@D)
	cd tools && CGO_ENABLED=1 $(GO) build -trimpath -tags '$(strip $(RUNC_TAGS))' -ldflags '-s -w' \
		-o $(abspath $@) github.com/opencontainers/runc
	$@ --version

tools-compat: $(TOOL_20_BINS) $(DEBIAN_RUNC) ## build containerd 2.0 (tools/containerd-2.0) into _output/tools-2.0/bin; unpack Debian's runc into _output/runc-debian

$(TOOL_20_BINS): $(TOOLS_20_DEPS)
	@mkdir -p $(@D)
	cd tools/containerd-2.0 && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(CONTAINERD_20_LDFLAGS)' \
		-o $(abspath $@) github.com/containerd/containerd/v2/cmd/$(@F)

# apt-get download needs the package lists: `apt-get update` runs only if it
# fails. The binary must predate process.scheduler (OCI spec 1.0.x).
$(DEBIAN_RUNC):
	rm -rf $(DEBIAN_RUNC_DIR).tmp && mkdir -p $(DEBIAN_RUNC_DIR).tmp
	cd $(DEBIAN_RUNC_DIR).tmp && apt_download() { apt-get download -q -o APT::Sandbox::User=root runc </dev/null; } && \
		{ apt_download || { apt-get update -q </dev/null && apt_download; }; }
	dpkg-deb -x $(DEBIAN_RUNC_DIR).tmp/runc_*.deb $(DEBIAN_RUNC_DIR).tmp
	$(DEBIAN_RUNC_DIR).tmp/usr/sbin/runc --version
	@$(DEBIAN_RUNC_DIR).tmp/usr/sbin/runc --version | grep -q '^spec: 1\.0\.' || \
		{ echo "Debian's runc supports process.scheduler (OCI spec >= 1.1): test-compat needs one that predates it" >&2; exit 1; }
	rm -rf $(DEBIAN_RUNC_DIR) && mv $(DEBIAN_RUNC_DIR).tmp $(DEBIAN_RUNC_DIR)

rootfs: $(ROOTFS_STAMP) ## build the test container rootfs (busybox and integration/testdata programs) in _output/rootfs

$(ROOTFS_STAMP): $(BUSYBOX) $(TESTDATA_BINS) Makefile
	mkdir -p $(addprefix $(ROOTFS)/,bin etc proc dev sys tmp root)
	chmod 1777 $(ROOTFS)/tmp
	cp $(BUSYBOX) $(ROOTFS)/bin/busybox
	for applet in $$($(BUSYBOX) --list); do \
		[ "$$applet" = busybox ] || [ -e $(ROOTFS)/bin/$$applet ] || ln -s busybox $(ROOTFS)/bin/$$applet; \
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >$(ROOTFS)/etc/passwd
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >$(ROOTFS)/etc/group
	touch $@

$(ROOTFS)/bin/%: integration/testdata/%.c
	@mkdir -p $(@D)
	$(TEST_CC) -static -O2 -Wall -Wextra -Werror -o $@ $<

$(BUSYBOX):
	@echo "$(BUSYBOX) is missing: run 'make deps' (installs busybox-static)" >&2; exit 1

demo: build tools rootfs ## start a private containerd and run an RT container through rtshim and the stock runc shim (root)
	@[ "$$(id -u)" -eq 0 ] || { echo "make demo needs root (containerd, runc, cgroups)" >&2; exit 1; }
	OUTPUT=$(OUTPUT) bash hack/demo.sh

deps: ## install the Debian packages the build needs (root)
	bash hack/install-deps.sh

##@ Test

test: test-unit ## run the unit tests, then (as root) the integration tests
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "integration tests skipped: they need root (containerd, runc, cgroups); run 'make test' as root"; \
	else \
		$(MAKE) --no-print-directory integration; \
	fi

test-unit: ## run the unit tests
	$(GO) test $(GO_TEST_FLAGS) $(UNIT_PKGS)

integration: build build-fp tools rootfs ## run the integration tests (root); log in _output/integration.log; fails on any skip
	@[ "$$(id -u)" -eq 0 ] || { echo "integration tests need root" >&2; exit 1; }
	RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		$(GO) test $(GO_TEST_FLAGS) -v -timeout $(INTEGRATION_TIMEOUT) $(if $(INTEGRATION_RUN),-run '$(INTEGRATION_RUN)') \
		./integration/... 2>&1 | tee $(INTEGRATION_LOG)
	@if grep -q -e '--- SKIP' $(INTEGRATION_LOG); then \
		echo "FAIL: integration tests were skipped as root (reasons in $(INTEGRATION_LOG)):" >&2; \
		grep -e '--- SKIP' $(INTEGRATION_LOG) >&2; \
		exit 1; \
	fi

test-compat: build tools tools-compat rootfs ## run an integration subset against containerd 2.0 and 2.4 x runc 1.5 and 1.1 (root); logs and table in _output/compat
	@[ "$$(id -u)" -eq 0 ] || { echo "make test-compat needs root (containerd, runc, cgroups)" >&2; exit 1; }
	COMPAT_MATRIX='$(COMPAT_MATRIX)' COMPAT_RUN='$(COMPAT_RUN)' COMPAT_OLD_RUNC_SKIP='$(COMPAT_OLD_RUNC_SKIP)' \
		COMPAT_LOG_DIR=$(COMPAT_LOG_DIR) GO=$(GO) GO_TEST_FLAGS='$(GO_TEST_FLAGS)' INTEGRATION_TIMEOUT=$(INTEGRATION_TIMEOUT) \
		RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		bash hack/test-compat.sh

# The cgroup v2 tier (make test-v2): Debian's PREEMPT_RT kernel under qemu's software
# emulation, booted from an initramfs holding containerd, runc, both shims, the test rootfs
# and the vmtest binary. hack/vm/install-deps.sh installs qemu and unpacks the kernel in VM_DIR.
VM_DIR ?= $(OUTPUT)/vm
VM_TIMEOUT ?= 9m
VM_GUEST_TIMEOUT ?= 8m
VM_LOG ?= $(VM_DIR)/test-v2.log

.PHONY: test-v2
test-v2: build tools rootfs ## run the cgroup v2 tests in Debian's PREEMPT_RT kernel under qemu (installs qemu, fetches the kernel); log in _output/vm/test-v2.log
	@mkdir -p $(VM_DIR)
	CGO_ENABLED=0 $(GO) test -c -trimpath -ldflags '-s -w' -o $(VM_DIR)/vmtest.test ./vmtest
	kernel=$$(VM_DIR=$(VM_DIR) bash hack/vm/install-deps.sh) && \
	BUSYBOX=$(BUSYBOX) bash hack/vm/initramfs.sh $(VM_DIR)/initramfs.cpio $(BIN_DIR) $(TOOLS_DIR) $(ROOTFS) \
		$(VM_DIR)/vmtest.test "$$kernel" $(VM_GUEST_TIMEOUT) && \
	RTSHIM_VM_KERNEL="$$kernel" RTSHIM_VM_INITRD=$(abspath $(VM_DIR))/initramfs.cpio \
		RTSHIM_VM_CONSOLE_LOG=$(abspath $(VM_DIR))/console.log RTSHIM_VM_TIMEOUT=$(VM_TIMEOUT) \
		$(GO) test $(GO_TEST_FLAGS) -v -timeout 15m -run '^TestVM$$' ./vmtest 2>&1 | tee $(VM_LOG)
	@if grep -q -e '--- SKIP: TestVM ' $(VM_LOG); then echo "FAIL: the VM tier was skipped (see $(VM_LOG))" >&2; exit 1; fi

.PHONY: bench
# -benchtime 1x: each benchmark measures once (RTSHIM_BENCH_ROUNDS rounds), whatever b.N.
bench: build tools rootfs ## print lifecycle time and shim memory against the stock runc shim (root); output in _output/bench.txt
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench needs root: it runs a private containerd and real containers on the host's cgroups" >&2; exit 1; }
	@mkdir -p $(dir $(BENCH_LOG))
	RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		RTSHIM_BENCH_ROUNDS=$(BENCH_ROUNDS) \
		$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout $(BENCH_TIMEOUT) \
		./integration/ 2>&1 | tee $(BENCH_LOG)

soak: build build-fp tools rootfs ## run the soak test for N lifecycles (default 500; root)
	@[ "$$(id -u)" -eq 0 ] || { echo "make soak needs root" >&2; exit 1; }
	RTSHIM_SOAK_N=$(N) RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) \
		RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		$(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./integration/

##@ Maintenance

lint: ## check formatting (gofmt) and run go vet
	@files=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go') </dev/null); \
	if [ -n "$$files" ]; then echo "gofmt needed on:" $$files >&2; exit 1; fi
	$(GO) vet ./...

clean: ## remove _output
	rm -rf $(OUTPUT)

help: ## show this help
	@awk 'BEGIN { FS = ":.*## " } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
