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
# Docker's (make tools-docker): Docker 29; Docker 28 with containerd 1.7; the CLI and Compose.
DOCKER29_DIR ?= $(OUTPUT)/tools-docker/bin
DOCKER28_DIR ?= $(OUTPUT)/tools-docker-28/bin
DOCKER_CLI_DIR ?= $(OUTPUT)/tools-docker-cli/bin
ROOTFS ?= $(OUTPUT)/rootfs
INTEGRATION_LOG ?= $(OUTPUT)/integration.log

# The shim: a static, stripped binary.
SHIM := containerd-shim-rt-v2
GO_BUILD_FLAGS ?= -trimpath
GO_LDFLAGS ?= -s -w -extldflags=-static

# The project's version (hack/version.sh: the newest v* tag and how far past it, e.g. 0.1.0 or
# 0.1.0+3.gabcdef1; 0.0.0+git<date>.<commit> without tags) and commit, stamped into all three
# binaries (--version) and given to the .deb. make VERSION=... overrides it.
ifneq ($(origin VERSION),command line)
VERSION := $(shell bash hack/version.sh 2>/dev/null || echo 0.0.0+unknown)
endif
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
VERSION_LDFLAGS = -X github.com/rtshim/rtshim/internal/version.Version=$(VERSION) \
	-X github.com/rtshim/rtshim/internal/version.Commit=$(COMMIT)

# Tests.
GO_TEST_FLAGS ?= -count=1
# The root tiers run `go test -json` through this: it prints the output as -v does and fails on
# any failed, skipped or unfinished test, or when none ran (hack/testjson).
TESTJSON ?= $(GO) run ./hack/testjson
INTEGRATION_TIMEOUT ?= 20m
INTEGRATION_RUN ?=
# Lifecycles of `make soak`.
N ?= 500
# Benchmarks (make bench): rounds of BenchmarkLifecycle, output file.
BENCH_ROUNDS ?= 100
BENCH_TIMEOUT ?= 30m
BENCH_LOG ?= $(OUTPUT)/bench.txt
# Seconds of the mixed application's run (BenchmarkQuota); containers of the scale benchmark
# and how many are created at once.
BENCH_SECONDS ?= 10
BENCH_SCALE ?= 400
BENCH_CONCURRENCY ?= 10
# The wake-up latency benchmarks (cyclictest; BenchmarkLatency, BenchmarkDocker): rounds of every
# scenario, each row measuring BENCH_LATENCY_SECONDS per round, the rows interleaved.
BENCH_LATENCY_ROUNDS ?= 5
BENCH_LATENCY_SECONDS ?= 2
# The report `make bench` writes: a Markdown page and its SVG plots in the directory of the
# same name (docs/benchmarks/), from the sections the benchmarks leave in BENCH_REPORT_DIR.
BENCH_DOC ?= docs/benchmarks.md
BENCH_REPORT_DIR ?= $(OUTPUT)/bench-report
# The command line the report names as its source, and a note for its header (e.g. what
# else ran on the host while it measured).
BENCH_COMMAND ?= make bench
BENCH_NOTE ?=
# Passed to bench/cmd/benchreport through the environment, so that any text (quotes included) is safe.
export BENCH_NOTE

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
COMPAT_RUN ?= ^(TestSmokeStockRuntime|TestDropIn|TestPolicyAtFirstInstruction|TestGrantMode|TestBudgets|TestBadInput|TestQuotaExemption|TestExecPolicy|TestRuncWrapperExecPolicy|TestDeadline|TestShimKilled|TestUpdateKeepsExemption|TestRuncOptionsForm|TestShimCgroup|TestContribContainerdConfig|TestTTY)$$
# Tests not run with a runc that predates process.scheduler (none: TestExecPolicy and
# TestRuncWrapperExecPolicy expect the refusal of an RT exec policy there, from the shim and
# from runc-rt).
COMPAT_OLD_RUNC_SKIP ?=
COMPAT_LOG_DIR ?= $(OUTPUT)/compat

# The container root filesystem: busybox plus the C test programs.
TESTDATA_SRCS := $(wildcard integration/testdata/*.c)
TESTDATA_BINS := $(patsubst integration/testdata/%.c,$(ROOTFS)/bin/%,$(TESTDATA_SRCS))
ROOTFS_STAMP := $(OUTPUT)/rootfs.stamp

# The benchmarks' rootfs: the test rootfs plus Debian's cyclictest and hackbench (rt-tests) and
# stress-ng, and the shared libraries they link, at the host's paths.
ROOTFS_BENCH ?= $(OUTPUT)/rootfs-bench
ROOTFS_BENCH_STAMP := $(OUTPUT)/rootfs-bench.stamp
CYCLICTEST ?= /usr/bin/cyclictest
HACKBENCH ?= /usr/bin/hackbench
STRESS_NG ?= /usr/bin/stress-ng
BENCH_PROGS = $(CYCLICTEST) $(HACKBENCH) $(STRESS_NG)

# Packages for unit tests: everything but the integration tests and the Kubernetes tier, which
# need root and the binaries above (run by `make integration` and `make test-k8s`).
UNIT_PKGS = $(shell $(GO) list -e ./... | grep -v -e '/integration' -e '/k8stest')

.PHONY: help build build-fp tools tools-compat rootfs rootfs-bench demo deps deps-build test test-unit test-compat integration soak lint clean

##@ Build

build: ## build the shim, the runc-rt wrapper, the rtshim CLI (doctor, status) and the node installer into _output/bin
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(BIN_DIR)/$(SHIM) ./cmd/$(SHIM)
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(BIN_DIR)/rtshim ./cmd/rtshim
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(BIN_DIR)/runc-rt ./cmd/runc-rt
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(BIN_DIR)/rtshim-node-install ./cmd/rtshim-node-install

build-fp: ## build the shim and runc-rt with failpoints (crash-safety tests only) into _output/bin-fp
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -tags failpoints -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(FP_BIN_DIR)/$(SHIM) ./cmd/$(SHIM)
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -tags failpoints -ldflags '$(GO_LDFLAGS) $(VERSION_LDFLAGS)' -o $(FP_BIN_DIR)/runc-rt ./cmd/runc-rt

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
	@echo "$(BUSYBOX) is missing: run 'make deps-build' (installs busybox-static)" >&2; exit 1

rootfs-bench: $(ROOTFS_BENCH_STAMP) ## build the benchmarks' rootfs (the test rootfs plus cyclictest, hackbench, stress-ng and their libraries) in _output/rootfs-bench

$(ROOTFS_BENCH_STAMP): $(ROOTFS_STAMP) $(BENCH_PROGS) Makefile
	rm -rf $(ROOTFS_BENCH).tmp
	cp -a $(ROOTFS) $(ROOTFS_BENCH).tmp
	for f in $$(printf '%s\n' $(BENCH_PROGS) $$(for p in $(BENCH_PROGS); do ldd $$p; done | \
			awk '$$2 == "=>" && $$3 ~ /^\// { print $$3 } $$1 ~ /^\// { print $$1 }') | sort -u); do \
		mkdir -p $(ROOTFS_BENCH).tmp$$(dirname $$f) && cp -L $$f $(ROOTFS_BENCH).tmp$$f; \
	done
	@if [ "$$(id -u)" -eq 0 ]; then \
		for check in "$(CYCLICTEST) --help|cyclictest V" "$(HACKBENCH) --help|hackbench V" "$(STRESS_NG) --version|stress-ng, version"; do \
			out=$$(chroot $(ROOTFS_BENCH).tmp $${check%|*} 2>&1 || true); \
			case "$$out" in "$${check#*|}"*) ;; *) echo "$${check%|*} does not run in $(ROOTFS_BENCH).tmp: $$out" | head -5 >&2; exit 1;; esac; \
		done; \
	fi
	rm -rf $(ROOTFS_BENCH) && mv $(ROOTFS_BENCH).tmp $(ROOTFS_BENCH)
	touch $@

$(CYCLICTEST) $(HACKBENCH):
	@echo "$@ is missing: run 'make deps' (installs rt-tests)" >&2; exit 1

$(STRESS_NG):
	@echo "$@ is missing: run 'make deps' (installs stress-ng)" >&2; exit 1

demo: deps-build build tools rootfs ## start a private containerd and run an RT container through rtshim and the stock runc shim (root)
	@[ "$$(id -u)" -eq 0 ] || { echo "make demo needs root (containerd, runc, cgroups)" >&2; exit 1; }
	OUTPUT=$(OUTPUT) bash hack/demo.sh

# hack/install-deps.sh's groups: build (what make build, tools, rootfs and demo need) and test
# (that plus docker.io, podman, rt-tests, stress-ng, libseccomp2 for the integration tests and benchmarks).
deps: ## install the Debian packages the build, the demo and all tests need (root; hack/install-deps.sh)
	bash hack/install-deps.sh

deps-build: ## install only the Debian packages the build and make demo need (root; no containerd, runc, Docker or Podman)
	bash hack/install-deps.sh build

##@ Test

test: test-unit ## run the unit tests, then (as root) the integration tests
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "integration tests skipped: they need root (containerd, runc, cgroups); run 'make test' as root"; \
	else \
		$(MAKE) --no-print-directory integration; \
	fi

test-unit: ## run the unit tests
	$(GO) test $(GO_TEST_FLAGS) $(UNIT_PKGS)

integration: deps build build-fp tools rootfs ## run the integration tests (root); log in _output/integration.log; fails on any skip
	@[ "$$(id -u)" -eq 0 ] || { echo "integration tests need root" >&2; exit 1; }
	RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		$(GO) test -json $(GO_TEST_FLAGS) -timeout $(INTEGRATION_TIMEOUT) $(if $(INTEGRATION_RUN),-run '$(INTEGRATION_RUN)') \
		./integration/... 2>&1 | $(TESTJSON) -log $(INTEGRATION_LOG)

test-compat: build tools tools-compat rootfs ## run an integration subset against containerd 2.0 and 2.4 x runc 1.5 and 1.1 (root); logs and table in _output/compat
	@[ "$$(id -u)" -eq 0 ] || { echo "make test-compat needs root (containerd, runc, cgroups)" >&2; exit 1; }
	COMPAT_MATRIX='$(COMPAT_MATRIX)' COMPAT_RUN='$(COMPAT_RUN)' COMPAT_OLD_RUNC_SKIP='$(COMPAT_OLD_RUNC_SKIP)' \
		COMPAT_LOG_DIR=$(COMPAT_LOG_DIR) GO=$(GO) GO_TEST_FLAGS='$(GO_TEST_FLAGS)' INTEGRATION_TIMEOUT=$(INTEGRATION_TIMEOUT) TESTJSON='$(TESTJSON)' \
		RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		bash hack/test-compat.sh

# The NRI peer of `make bench` (BenchmarkNRIRoute). make tools-nri tries to build
# containers/nri-plugins' balloons policy from tools/nri-plugins and records the outcome, built
# or why not, in NRI_PLUGINS_BUILD (its last line: "exit status N"; module cache paths shown as
# $GOMODCACHE), for the report; it fails only if it cannot record. Tried again when the pin
# moves. hack/nri-sched, the benchmarks' NRI plugin (its own module), builds into the same dir.
NRI_TOOLS_DIR ?= $(OUTPUT)/tools-nri
NRI_PLUGINS_BUILD := $(NRI_TOOLS_DIR)/nri-plugins-build.log
NRI_SCHED := $(NRI_TOOLS_DIR)/bin/nri-sched

.PHONY: tools-nri
tools-nri: $(NRI_PLUGINS_BUILD) $(NRI_SCHED) ## try to build containers/nri-plugins (tools/nri-plugins; outcome in _output/tools-nri/nri-plugins-build.log); build hack/nri-sched, the benchmarks' NRI plugin

$(NRI_PLUGINS_BUILD): tools/nri-plugins/go.mod tools/nri-plugins/go.sum
	@mkdir -p $(NRI_TOOLS_DIR)/bin
	cd tools/nri-plugins && modcache=$$($(GO) env GOMODCACHE) && \
		{ rc=0; CGO_ENABLED=0 $(GO) build -mod=mod -trimpath -ldflags '-s -w' -o $(abspath $(NRI_TOOLS_DIR))/bin/nri-resource-policy-balloons \
			github.com/containers/nri-plugins/cmd/plugins/balloons 2>&1 || rc=$$?; echo "exit status $$rc"; } | \
		sed "s|$$modcache|\$$GOMODCACHE|g" >$(abspath $@).tmp
	cat $@.tmp && mv $@.tmp $@

$(NRI_SCHED): hack/nri-sched/go.mod hack/nri-sched/go.sum $(wildcard hack/nri-sched/*.go)
	@mkdir -p $(@D)
	cd hack/nri-sched && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $@) .

# The cgroup v2 tier (make test-v2): Debian's PREEMPT_RT kernel under qemu's software
# emulation, booted from an initramfs holding containerd, runc, both shims, the test rootfs
# and the vmtest binary. hack/vm/install-deps.sh installs qemu and unpacks the kernel in VM_DIR.
VM_DIR ?= $(OUTPUT)/vm
VM_TIMEOUT ?= 11m
# vCPUs of the guest: 4, so that exclusive CPUs (TestV2Tuning) leave some to the rest.
VM_CPUS ?= 4
VM_GUEST_TIMEOUT ?= 10m
VM_LOG ?= $(VM_DIR)/test-v2.log
# The guest's -test.run: every TestV2 test by default (make test-v2 VM_RUN='^TestV2(NRIRoute|NoResidue)$$'
# runs two); the host expects a result from each test it selects.
VM_RUN ?= ^TestV2
# The NRI peer's figures of the last passing test-v2 (TestV2NRIRoute), dated: make bench's
# report includes them (BenchmarkNRIRoute).
VM_NRI_REPORT ?= $(VM_DIR)/nri-route.txt
# Docker 29 in the guest (TestV2Docker): dockerd and the docker CLI of make tools-docker.
VM_DOCKER_BINS = $(DOCKER29_DIR)/dockerd $(DOCKER_CLI_DIR)/docker

.PHONY: test-v2
test-v2: build tools rootfs $(VM_DOCKER_BINS) $(NRI_SCHED) ## run the cgroup v2 tests (Docker 29's among them) in Debian's PREEMPT_RT kernel under qemu (installs qemu, fetches the kernel); log in _output/vm/test-v2.log
	@mkdir -p $(VM_DIR)
	CGO_ENABLED=0 $(GO) test -c -trimpath -ldflags '-s -w' -o $(VM_DIR)/vmtest.test ./vmtest
	kernel=$$(VM_DIR=$(VM_DIR) bash hack/vm/install-deps.sh) && \
	DOCKER_BINS='$(abspath $(VM_DOCKER_BINS))' NRI_BINS='$(abspath $(NRI_SCHED))' VM_RUN='$(VM_RUN)' BUSYBOX=$(BUSYBOX) bash hack/vm/initramfs.sh $(VM_DIR)/initramfs.cpio $(BIN_DIR) $(TOOLS_DIR) $(ROOTFS) \
		$(VM_DIR)/vmtest.test "$$kernel" $(VM_GUEST_TIMEOUT) && \
	RTSHIM_VM_KERNEL="$$kernel" RTSHIM_VM_INITRD=$(abspath $(VM_DIR))/initramfs.cpio \
		RTSHIM_VM_TEST_BINARY=$(abspath $(VM_DIR))/vmtest.test \
		RTSHIM_VM_CONSOLE_LOG=$(abspath $(VM_DIR))/console.log RTSHIM_VM_TIMEOUT=$(VM_TIMEOUT) RTSHIM_VM_CPUS=$(VM_CPUS) \
		RTSHIM_VM_NRI_REPORT=$(abspath $(VM_NRI_REPORT)) RTSHIM_VM_RUN='$(VM_RUN)' \
		$(GO) test -json $(GO_TEST_FLAGS) -timeout 15m -run '^TestVM$$' ./vmtest 2>&1 | $(TESTJSON) -log $(VM_LOG)

.PHONY: bench bench-smoke
# -benchtime 1x: each benchmark measures once (RTSHIM_BENCH_ROUNDS rounds, RTSHIM_BENCH_SECONDS
# seconds, RTSHIM_BENCH_LATENCY_ROUNDS rounds of RTSHIM_BENCH_LATENCY_SECONDS), whatever b.N. A
# missed goal is printed as MISS; an error or a skipped benchmark fails the target (TESTJSON).
# Then bench/cmd/benchreport assembles the sections into $(BENCH_DOC).
# BenchmarkDocker runs Docker 29 (dockerd and the docker CLI of make tools-docker).
BENCH_DOCKER_BINS = $(DOCKER29_DIR)/dockerd $(DOCKER_CLI_DIR)/docker
# The stock runc shim built from the containerd module the rt shim links (go.mod), the same
# way as the rt shim: BenchmarkShimMemory and BenchmarkLifecycle tell the libraries' share of the
# memory and the time from rtshim's.
BENCH_LIBS_SHIM = $(OUTPUT)/bench-bin/containerd-shim-runc-v2
$(BENCH_LIBS_SHIM): go.mod go.sum
	CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
bench: build tools rootfs-bench tools-nri $(BENCH_DOCKER_BINS) $(BENCH_LIBS_SHIM) ## measure lifecycle, shim memory, wake-up latency (cyclictest), quota, scale, Docker's own RT route and the NRI route against the host and the stock runc shim (root); writes docs/benchmarks.md
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench needs root: it runs a private containerd and real containers on the host's cgroups" >&2; exit 1; }
	@mkdir -p $(dir $(BENCH_LOG))
	rm -rf $(BENCH_REPORT_DIR) && mkdir -p $(BENCH_REPORT_DIR)
	RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS_BENCH)) \
		RTSHIM_BENCH_ROUNDS=$(BENCH_ROUNDS) RTSHIM_BENCH_SECONDS=$(BENCH_SECONDS) RTSHIM_BENCH_SCALE=$(BENCH_SCALE) \
		RTSHIM_BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) RTSHIM_BENCH_LATENCY_ROUNDS=$(BENCH_LATENCY_ROUNDS) \
		RTSHIM_BENCH_LATENCY_SECONDS=$(BENCH_LATENCY_SECONDS) RTSHIM_BENCH_REPORT_DIR=$(abspath $(BENCH_REPORT_DIR)) \
		RTSHIM_DOCKERD_29=$(abspath $(DOCKER29_DIR))/dockerd RTSHIM_DOCKER_CLI=$(abspath $(DOCKER_CLI_DIR))/docker \
		RTSHIM_NRI_PLUGIN=$(abspath $(NRI_SCHED)) RTSHIM_NRI_PLUGINS_BUILD=$(abspath $(NRI_PLUGINS_BUILD)) \
		RTSHIM_NRI_VM_REPORT=$(abspath $(VM_NRI_REPORT)) RTSHIM_BENCH_LIBS_SHIM=$(abspath $(BENCH_LIBS_SHIM)) \
		$(GO) test -json -count=1 -run '^$$' -bench . -benchtime 1x -timeout $(BENCH_TIMEOUT) \
		./bench/ 2>&1 | $(TESTJSON) -log $(BENCH_LOG)
	$(GO) run ./bench/cmd/benchreport -in $(BENCH_REPORT_DIR) -out $(BENCH_DOC) -note "$$BENCH_NOTE" \
		-command '$(BENCH_COMMAND) BENCH_SECONDS=$(BENCH_SECONDS) BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_SCALE=$(BENCH_SCALE) BENCH_CONCURRENCY=$(BENCH_CONCURRENCY) BENCH_LATENCY_ROUNDS=$(BENCH_LATENCY_ROUNDS) BENCH_LATENCY_SECONDS=$(BENCH_LATENCY_SECONDS)'

# The same benchmarks, tiny: to prove in CI that `make bench` works, not to measure.
BENCH_SMOKE_DIR ?= $(OUTPUT)/bench-smoke
bench-smoke: ## run `make bench` with tiny durations and counts (a few minutes; root); report in _output/bench-smoke
	$(MAKE) --no-print-directory bench BENCH_SECONDS=2 BENCH_ROUNDS=2 BENCH_SCALE=20 BENCH_LATENCY_ROUNDS=2 BENCH_LATENCY_SECONDS=1 \
		BENCH_LOG=$(BENCH_SMOKE_DIR)/bench.txt BENCH_DOC=$(BENCH_SMOKE_DIR)/benchmarks.md \
		BENCH_REPORT_DIR=$(BENCH_SMOKE_DIR)/report BENCH_COMMAND='make bench-smoke' \
		BENCH_NOTE='a smoke run: tiny durations and counts prove the harness works; the figures mean little.'

soak: build build-fp tools rootfs ## run the soak test for N lifecycles (default 500; root)
	@[ "$$(id -u)" -eq 0 ] || { echo "make soak needs root" >&2; exit 1; }
	RTSHIM_SOAK_N=$(N) RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_FP_BIN_DIR=$(abspath $(FP_BIN_DIR)) \
		RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		$(GO) test -json -count=1 -timeout 60m -run '^TestSoak$$' ./integration/ 2>&1 | $(TESTJSON)

# The Kubernetes tier (make test-k8s): a single-node cluster (etcd, kube-apiserver,
# kube-scheduler, kube-controller-manager, kubelet, kubectl) over a private containerd with
# CRI, on the host's cgroups. Its binaries build from the pins in tools/k8s, tools/etcd and
# tools/cni, and only again when a pin moves (the kubelet takes ~10 minutes from a cold cache).
K8S_TOOLS_DIR ?= $(OUTPUT)/tools-k8s/bin
CNI_DIR ?= $(OUTPUT)/tools-cni/bin
K8S_DEPS := tools/k8s/go.mod tools/k8s/go.sum
ETCD_DEPS := tools/etcd/go.mod tools/etcd/go.sum
CNI_DEPS := tools/cni/go.mod tools/cni/go.sum
K8S_BINS := $(addprefix $(K8S_TOOLS_DIR)/,kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
CNI_BINS := $(addprefix $(CNI_DIR)/,loopback tap host-local)
K8S_VERSION = $(shell cd tools/k8s && $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_MAJOR = $(word 1,$(subst ., ,$(patsubst v%,%,$(K8S_VERSION))))
K8S_MINOR = $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS = -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(K8S_MAJOR) -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=$(K8S_MAJOR) -X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR)
K8S_TIMEOUT ?= 15m
K8S_RUN ?=
K8S_LOG ?= $(OUTPUT)/test-k8s.log
K8S_LOG_DIR ?= $(OUTPUT)/k8s-logs

.PHONY: tools-k8s test-k8s
tools-k8s: $(K8S_BINS) $(K8S_TOOLS_DIR)/etcd $(CNI_BINS) ## build etcd, the Kubernetes components, kubectl and the CNI plugins (tools/k8s, tools/etcd, tools/cni pins) into _output

$(K8S_BINS): $(K8S_DEPS)
	@mkdir -p $(@D)
	cd tools/k8s && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $(abspath $@) k8s.io/kubernetes/cmd/$(@F)

$(K8S_TOOLS_DIR)/etcd: $(ETCD_DEPS)
	@mkdir -p $(@D)
	cd tools/etcd && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $@) go.etcd.io/etcd/server/v3

$(CNI_DIR)/loopback $(CNI_DIR)/tap: $(CNI_DEPS)
	@mkdir -p $(@D)
	cd tools/cni && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $@) github.com/containernetworking/plugins/plugins/main/$(@F)

$(CNI_DIR)/host-local: $(CNI_DEPS)
	@mkdir -p $(@D)
	cd tools/cni && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $@) github.com/containernetworking/plugins/plugins/ipam/host-local

# The node installer's image (contrib/kubernetes/install/): the installer, the binaries and the
# default configs, as an OCI image archive built with go-containerregistry (hack/image, its own
# module: the shim does not depend on it).
IMAGE ?= $(OUTPUT)/rtshim-node-installer.tar
IMAGE_NAME ?= localhost/rtshim/node-installer:latest
IMAGE_ROOT := /opt/rtshim

.PHONY: image
image: build ## build the node installer's image (contrib/kubernetes/install/) as an OCI archive: _output/rtshim-node-installer.tar
	cd hack/image && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run . -o $(abspath $(IMAGE)) -name $(IMAGE_NAME) \
		-entrypoint $(IMAGE_ROOT)/bin/rtshim-node-install \
		$(foreach b,$(SHIM) runc-rt rtshim rtshim-node-install,-file $(IMAGE_ROOT)/bin/$(b)=$(abspath $(BIN_DIR)/$(b))) \
		-file $(IMAGE_ROOT)/rtshim.toml=$(abspath contrib/rtshim.toml) \
		-file $(IMAGE_ROOT)/containerd-rt.toml=$(abspath contrib/containerd/config.toml)

test-k8s: deps build tools tools-k8s rootfs image ## run the single-node Kubernetes cluster tests (root); log in _output/test-k8s.log, daemon logs of a failed run in _output/k8s-logs; fails on any skip
	@[ "$$(id -u)" -eq 0 ] || { echo "make test-k8s needs root (containerd, kubelet, cgroups)" >&2; exit 1; }
	rm -rf $(K8S_LOG_DIR)
	RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_K8S_DIR=$(abspath $(K8S_TOOLS_DIR)) \
		RTSHIM_CNI_DIR=$(abspath $(CNI_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) RTSHIM_K8S_LOG_DIR=$(abspath $(K8S_LOG_DIR)) \
		RTSHIM_IMAGE=$(abspath $(IMAGE)) RTSHIM_IMAGE_NAME=$(IMAGE_NAME) \
		$(GO) test -json $(GO_TEST_FLAGS) -timeout $(K8S_TIMEOUT) $(if $(K8S_RUN),-run '$(K8S_RUN)') ./k8stest/ 2>&1 | $(TESTJSON) -log $(K8S_LOG)

# Docker as users run it (make test-docker): Docker 29 (dockerd from the moby/v2 module,
# tools/docker: v2.0.0-beta.24 is Docker 29.8, after 29.8.0) against the tests' containerd
# 2.4, Docker 28.5.2 (tools/docker-28) against containerd 1.7 (tools/containerd-1.7) as it
# ships, both driven by the docker CLI 29 and the Compose plugin (tools/docker-cli,
# tools/docker-compose). Static, with the tags of Docker's own static builds. Each binary is
# rebuilt only when its module's go.mod or go.sum changes; with a warm build cache that is a
# link (seconds), from a cold one about 8 minutes in all.
DOCKER_TOOL_BINS := $(DOCKER29_DIR)/dockerd $(DOCKER28_DIR)/dockerd \
	$(addprefix $(DOCKER28_DIR)/,containerd ctr containerd-shim-runc-v2) \
	$(DOCKER_CLI_DIR)/docker $(DOCKER_CLI_DIR)/docker-compose
DOCKER_LOG ?= $(OUTPUT)/test-docker.log
DOCKER_TIMEOUT ?= 20m
# A module's version, for the version stamps: $(call tool_version,<dir>,<module>), without
# the v and +incompatible of Docker's modules where asked ($(call docker_version,...)).
tool_version = $(shell cd $(1) && $(GO) list -m -f '{{.Version}}' $(2))
docker_version = $(patsubst v%,%,$(subst +incompatible,,$(call tool_version,$(1),$(2))))
MOBY_VERSION = $(call tool_version,tools/docker,github.com/moby/moby/v2)

.PHONY: tools-docker test-docker
tools-docker: $(DOCKER_TOOL_BINS) ## build Docker 29 and 28, containerd 1.7, the docker CLI and Compose (tools/docker*, tools/containerd-1.7) into _output/tools-docker*/bin

test-docker: build tools rootfs tools-docker ## run Docker 29 (runtimeType form) and Docker 28 on containerd 1.7 (path form) with Docker's RT flags and Compose (root); log in _output/test-docker.log; fails on any skip (hack/testjson)
	@[ "$$(id -u)" -eq 0 ] || { echo "make test-docker needs root (dockerd, containerd, cgroups)" >&2; exit 1; }
	RTSHIM_DOCKERD_29=$(abspath $(DOCKER29_DIR))/dockerd RTSHIM_DOCKERD_28=$(abspath $(DOCKER28_DIR))/dockerd \
		RTSHIM_CONTAINERD_17=$(abspath $(DOCKER28_DIR))/containerd \
		RTSHIM_DOCKER_CLI=$(abspath $(DOCKER_CLI_DIR))/docker RTSHIM_DOCKER_COMPOSE=$(abspath $(DOCKER_CLI_DIR))/docker-compose \
		RTSHIM_BIN_DIR=$(abspath $(BIN_DIR)) RTSHIM_TOOLS_DIR=$(abspath $(TOOLS_DIR)) RTSHIM_ROOTFS=$(abspath $(ROOTFS)) \
		$(GO) test -json $(GO_TEST_FLAGS) -tags docker -timeout $(DOCKER_TIMEOUT) -run '^TestDocker(29|28)$$' ./integration/ 2>&1 | $(TESTJSON) -log $(DOCKER_LOG)

$(DOCKER29_DIR)/dockerd: tools/docker/go.mod tools/docker/go.sum
	@mkdir -p $(@D)
	cd tools/docker && CGO_ENABLED=0 $(GO) build -trimpath -tags 'netgo osusergo static_build nri_no_wasm' \
		-ldflags '-s -w -X github.com/moby/moby/v2/dockerversion.Version=$(MOBY_VERSION) -X github.com/moby/moby/v2/dockerversion.GitCommit=moby-$(MOBY_VERSION)' \
		-o $(abspath $@) github.com/moby/moby/v2/cmd/dockerd

# docker/docker and docker/cli are +incompatible modules (no go.mod): the go command compiles
# them at -lang=go1.16 unless told otherwise.
$(DOCKER28_DIR)/dockerd: tools/docker-28/go.mod tools/docker-28/go.sum
	@mkdir -p $(@D)
	cd tools/docker-28 && v=$(call docker_version,tools/docker-28,github.com/docker/docker) && \
		CGO_ENABLED=0 $(GO) build -trimpath -tags 'netgo osusergo static_build' -gcflags=github.com/docker/docker/...=-lang=go1.24 \
		-ldflags "-s -w -X github.com/docker/docker/dockerversion.Version=$$v -X github.com/docker/docker/dockerversion.GitCommit=v$$v" \
		-o $(abspath $@) github.com/docker/docker/cmd/dockerd

$(addprefix $(DOCKER28_DIR)/,containerd ctr containerd-shim-runc-v2): tools/containerd-1.7/go.mod tools/containerd-1.7/go.sum
	@mkdir -p $(@D)
	cd tools/containerd-1.7 && CGO_ENABLED=0 $(GO) build -trimpath \
		-ldflags '-s -w -X github.com/containerd/containerd/version.Version=$(call tool_version,tools/containerd-1.7,github.com/containerd/containerd)' \
		-o $(abspath $@) github.com/containerd/containerd/cmd/$(@F)

$(DOCKER_CLI_DIR)/docker: tools/docker-cli/go.mod tools/docker-cli/go.sum
	@mkdir -p $(@D)
	cd tools/docker-cli && v=$(call docker_version,tools/docker-cli,github.com/docker/cli) && \
		CGO_ENABLED=0 $(GO) build -trimpath -tags 'netgo osusergo' -gcflags=github.com/docker/cli/...=-lang=go1.26 \
		-ldflags "-s -w -X github.com/docker/cli/cli/version.Version=$$v -X github.com/docker/cli/cli/version.GitCommit=v$$v" \
		-o $(abspath $@) github.com/docker/cli/cmd/docker

$(DOCKER_CLI_DIR)/docker-compose: tools/docker-compose/go.mod tools/docker-compose/go.sum
	@mkdir -p $(@D)
	cd tools/docker-compose && CGO_ENABLED=0 $(GO) build -trimpath -tags 'netgo osusergo' -gcflags=github.com/docker/cli/...=-lang=go1.26 \
		-ldflags '-s -w -X github.com/docker/compose/v5/internal.Version=$(call tool_version,tools/docker-compose,github.com/docker/compose/v5)' \
		-o $(abspath $@) github.com/docker/compose/v5/cmd

##@ Install and package

# make install: the binaries and docs under $(DESTDIR)$(PREFIX); the config under
# $(DESTDIR)/etc/containerd whatever PREFIX is, since the shim and runc-rt read it there. The
# examples (contrib/) name the binaries where this install puts them: /usr/local/bin/ in them
# becomes $(PREFIX)/bin/ (/usr/bin/ in the .deb).
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install
INSTALL_BIN = $(abspath $(DESTDIR)$(PREFIX)/bin)
INSTALL_DOC = $(abspath $(DESTDIR)$(PREFIX)/share/doc/rtshim)
INSTALL_CONFIG = $(abspath $(DESTDIR)/etc/containerd/rtshim.toml)
SHIM_HELP_HEAD = $(SHIM) - the containerd shim for runtime type io.containerd.rt.v2: containerd's runc shim plus real-time scheduling. containerd starts it (ctr run --runtime io.containerd.rt.v2, a CRI runtime, a Docker runtimeType); its flags are containerd's shim protocol. See README.md.
# make package: the tree make install stages for the .deb (PREFIX=/usr), the version (the
# binaries' VERSION: hack/version.sh's forms are valid Debian versions), and the file. File
# times in the .deb are the commit's (SOURCE_DATE_EPOCH), so the same binaries give the same
# package.
PKG_ROOT ?= $(OUTPUT)/pkgroot
PKG_VERSION = $(VERSION)
PKG_ARCH ?= $(shell $(GO) env GOARCH)
DEB ?= $(OUTPUT)/rtshim_$(PKG_VERSION)_$(PKG_ARCH).deb
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

.PHONY: install package test-package

install: build ## install the binaries into $(DESTDIR)$(PREFIX)/bin (PREFIX=/usr/local), the config (if absent), docs, examples and --help texts
	$(INSTALL) -d $(INSTALL_BIN) $(INSTALL_DOC)
	$(INSTALL) -m 755 $(BIN_DIR)/$(SHIM) $(BIN_DIR)/runc-rt $(BIN_DIR)/rtshim $(INSTALL_BIN)/
	@if [ -e $(INSTALL_CONFIG) ]; then echo "keeping $(INSTALL_CONFIG)"; else \
		echo "$(INSTALL) -D -m 644 contrib/rtshim.toml $(INSTALL_CONFIG)"; \
		$(INSTALL) -D -m 644 contrib/rtshim.toml $(INSTALL_CONFIG); \
	fi
	$(INSTALL) -m 644 README.md CHANGELOG.md LICENSE $(INSTALL_DOC)/
	for f in $$(cd docs && find . -type f ! -name '*.tmp' | sort); do $(INSTALL) -D -m 644 docs/$$f $(INSTALL_DOC)/docs/$$f; done
	for f in $$(cd contrib && find . -type f | sort); do \
		$(INSTALL) -d $$(dirname $(INSTALL_DOC)/examples/$$f); \
		sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' contrib/$$f >$(INSTALL_DOC)/examples/$$f; \
		chmod 644 $(INSTALL_DOC)/examples/$$f; \
	done
	$(BIN_DIR)/rtshim --help >$(INSTALL_DOC)/rtshim.txt
	$(BIN_DIR)/runc-rt --help >$(INSTALL_DOC)/runc-rt.txt
	{ printf '%s\n\n' "$(SHIM_HELP_HEAD)"; (exec -a $(SHIM) $(BIN_DIR)/$(SHIM) -h 2>&1); } >$(INSTALL_DOC)/$(SHIM).txt
	chmod 644 $(INSTALL_DOC)/*.txt

package: build ## build the .deb (nfpm, hack/package) into _output/: binaries in /usr/bin, /etc/containerd/rtshim.toml as a conffile, docs
	rm -rf $(PKG_ROOT)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(PKG_ROOT)) PREFIX=/usr
	cd hack/package && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run . \
		-root $(abspath $(PKG_ROOT)) -o $(abspath $(DEB)) -version '$(PKG_VERSION)' -arch $(PKG_ARCH)

test-package: package ## test make install (temp DESTDIR) and the .deb (apt-get --simulate; dpkg into a temp root, as root)
	cd hack/package && RTSHIM_DEB=$(abspath $(DEB)) RTSHIM_PKG_VERSION='$(PKG_VERSION)' \
		$(GO) test $(GO_TEST_FLAGS) -v ./...

##@ Maintenance

# golangci-lint v2, pinned: .golangci.yml's linters (the standard set, staticcheck among them,
# and errorlint, gocritic, misspell, revive, unparam, ...) and formatters (gofmt, goimports).
# `go run` builds it from the Go module proxy with the local toolchain: about a minute the
# first time, then from the build cache.
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
# The build tools' own modules (the shim does not depend on them): linted and tidy-checked too.
SUB_MODULES := hack/package hack/image hack/nri-sched
# Packages no product binary may link: the test harness, the benchmarks, package testing.
TEST_ONLY_PKGS := ^(testing|github.com/rtshim/rtshim/(internal/harness|bench)(/.*)?)$$

lint: ## gofmt; golangci-lint (also with the failpoints and docker tags, and on hack/package and hack/image); go mod tidy changes nothing; no test code in a product binary
	@files=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go') </dev/null); \
	if [ -n "$$files" ]; then echo "gofmt needed on:" $$files >&2; exit 1; fi
	$(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags failpoints,docker ./...
	for m in $(SUB_MODULES); do (cd $$m && $(GOLANGCI_LINT) run ./...) || exit 1; done
	$(GO) mod tidy -diff
	for m in $(SUB_MODULES); do (cd $$m && $(GO) mod tidy -diff) || exit 1; done
	@for tags in '' failpoints; do \
		linked=$$($(GO) list -deps -tags "$$tags" ./cmd/... | grep -E '$(TEST_ONLY_PKGS)' || true); \
		if [ -n "$$linked" ]; then echo "product binaries (tags '$$tags') link test code:" $$linked >&2; exit 1; fi; \
	done

clean: ## remove _output
	rm -rf $(OUTPUT)

help: ## show this help
	@awk 'BEGIN { FS = ":.*## " } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
