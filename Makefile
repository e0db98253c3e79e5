# Top-level entry points. `make` builds, `make check` runs every test,
# `make demo` runs the server with its embedded SQLite store, `make install`
# installs (PREFIX, SYSCONFDIR, DESTDIR), `make deb` builds a Debian package.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The sanitizer build (ASan + UBSan + LSan) and the libFuzzer build (clang).
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target: `make fuzz` (FUZZ_TARGETS="http api" for some),
# and the short run that is part of `make check` (0 leaves it out).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=
CHECK_FUZZ_SECONDS ?= 30
# `make install`: binaries, man pages, bash completion and systemd units
# under PREFIX, the example config files in SYSCONFDIR/lxcm (kept when
# already there), everything below DESTDIR when set.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
# `make deb`: where the .deb and its build tree go.
DEB_BUILD ?= $(BUILD)/deb

.PHONY: all deps build check unit integration demo clean format lint asan fuzz install deb

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# Unit tests on the normal build; every test (unit and integration, which
# starts LXD) on the sanitizer build; then each fuzz target briefly.
check: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	@sh scripts/check-banned.sh
	@sh scripts/run-tests.sh --asan $(ASAN_BUILD) --fuzz $(FUZZ_BUILD) $(CHECK_FUZZ_SECONDS) $(BUILD)

asan:
	@cmake -S . -B $(ASAN_BUILD) -DLXCM_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz: deps
	@sh scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_TARGETS)

# The install paths are set at configure time (the units name them), so the
# build directory is configured again with this PREFIX and SYSCONFDIR.
install:
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		-DCMAKE_INSTALL_SYSCONFDIR=$(SYSCONFDIR) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(if $(DESTDIR),$(abspath $(DESTDIR)))" cmake --install $(BUILD)

# A binary package of this tree with debhelper (packaging/debian/), then
# lintian when it is installed. The .deb lands in DEB_BUILD.
deb:
	@sh scripts/make-deb.sh $(DEB_BUILD)

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
