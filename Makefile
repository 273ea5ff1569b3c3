# The two commands a newcomer needs: `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CONFIG ?= configs/default.yaml
CMAKE_FLAGS ?=
# `make sanitize` and `make fuzz`: one clang build with ASan, UBSan and libFuzzer's coverage hooks.
SANITIZE_DIR ?= build-sanitize
FUZZ_RUNS ?= 1000000
FUZZ_SECONDS ?= 1200
FUZZ_JOBS ?= $(JOBS)
FUZZ_TARGETS ?=
SANITIZER_ENV = ASAN_OPTIONS=detect_container_overflow=0:allocator_may_return_null=1:detect_leaks=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp

.PHONY: setup configure build run test bench format clean sanitize-build sanitize fuzz fuzz-seeds

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/a2a run $(CONFIG)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_DIR)/a2a_bench

sanitize-build:
	@bash scripts/setup.sh sanitize
	@CXX=clang++ cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=Release -DA2A_SANITIZE=ON -DA2A_FUZZ=ON > /dev/null
	@cmake --build $(SANITIZE_DIR) -j $(JOBS)

# The whole unit suite under AddressSanitizer and UndefinedBehaviorSanitizer (halt on the first report).
sanitize: sanitize-build
	cd $(SANITIZE_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS)

# Every fuzz target for FUZZ_RUNS executions (at most FUZZ_SECONDS each), from fuzz/corpus and
# fuzz/regressions; prints executions, coverage and crashes per target.
fuzz: sanitize-build
	@bash fuzz/run.sh $(SANITIZE_DIR) $(FUZZ_RUNS) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# Rewrites fuzz/corpus from our own writers.
fuzz-seeds: build
	$(BUILD_DIR)/a2a_fuzz_seeds fuzz/corpus

# Reformats every tracked C++ file in place with the repository's .clang-format.
format:
	@git ls-files '*.cpp' '*.h' | grep -v 'tokenizers/unicode_data.cpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) out
