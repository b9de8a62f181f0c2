# Front door: make deps | build | test | demo | bench | clean
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build test unit integration demo bench clean format

all: build

deps:
	@bash scripts/deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

build: $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure

unit: build
	$(BUILD_DIR)/bin/unit_tests

integration: build
	$(BUILD_DIR)/bin/integration_tests

demo: deps
	$(MAKE) build
	@bash scripts/demo.sh $(BUILD_DIR)/bin/berth $(BUILD_DIR)/bin/berthctl

bench: deps
	$(MAKE) build
	@bash bench/run.sh $(BUILD_DIR)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD_DIR)
