# The two commands a newcomer needs: `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CONFIG ?= configs/default.yaml
CMAKE_FLAGS ?=

.PHONY: setup configure build run test bench format clean

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

# Reformats every tracked C++ file in place with the repository's .clang-format.
format:
	@git ls-files '*.cpp' '*.h' | grep -v 'tokenizers/unicode_data.cpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) out
