# Top-level entry points. `make` builds, `make check` runs every test,
# `make demo` runs the server with its embedded SQLite store.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build check unit integration demo clean format lint

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

check: deps
	@$(MAKE) --no-print-directory build
	@sh scripts/check-banned.sh
	@sh scripts/run-tests.sh $(BUILD)

unit: build
	cd $(BUILD) && ctest -L unit --output-on-failure

integration: build
	cd $(BUILD) && ctest -L integration --output-on-failure

demo: deps
	@$(MAKE) --no-print-directory build
	@sh scripts/demo.sh $(BUILD)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	rm -rf $(BUILD)
