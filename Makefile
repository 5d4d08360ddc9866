# Thin wrapper over scripts/install-deps.sh, CMake presets and CTest. Everything real lives in CMakeLists.txt.
#
#   make run     install missing packages, build, serve www/ and the example handlers at http://127.0.0.1:8080
#   make test    install missing packages, build, run every test (ctest)
#   make asan    the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (preset asan-ubsan)
#   make bench   install missing packages, build, run spawnd-bench's quick profile (< 5 minutes on 2 cores)
#   make soak    build spawnd and the handlers under asan-ubsan, run every mode under hostile load for SOAK_SECONDS
#   make fuzz    install clang-14, build the libFuzzer targets (preset fuzz), run each for FUZZ_SECONDS (default 60)
#
# PRESET picks the CMake preset (release, debug, asan-ubsan, ci); LISTEN the address `make run` serves on;
# SPAWND_ARGS adds flags to the server `make run` starts (e.g. SPAWND_ARGS='--mode fork'); BENCH_ARGS adds flags to
# spawnd-bench (e.g. BENCH_ARGS='--full --peers'; with --peers the peer servers are installed first).
# SOAK_SECONDS is how long `make soak` loads each mode (all four at once; default 180); SOAK_ARGS adds flags to
# tests/soak/soak.py (e.g. SOAK_ARGS='--modes fork --clients 6').

PRESET ?= release
LISTEN ?= 127.0.0.1:8080
SPAWND_ARGS ?=
BENCH_ARGS ?=
SOAK_SECONDS ?= 180
SOAK_ARGS ?=
FUZZ_SECONDS ?= 60
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build run test asan bench soak fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

run: build
	@mkdir -p var
	exec $(BUILD)/spawnd --listen $(LISTEN) --root www --cgi-bin $(BUILD)/cgi-bin --db var/site.db $(SPAWND_ARGS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

asan:
	$(MAKE) test PRESET=asan-ubsan

bench: build
	@case " $(BENCH_ARGS) " in *" --peers "*) sh scripts/install-deps.sh --bench ;; esac
	$(BUILD)/spawnd-bench $(BENCH_ARGS)

# Only what the soak runs (spawnd and the handlers), not the test suites: the asan-ubsan build of everything is slow.
soak:
	$(MAKE) configure PRESET=asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS) --target spawnd handlers
	python3 tests/soak/soak.py --build build/asan-ubsan --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

fuzz:
	@sh scripts/install-deps.sh --fuzz
	@test -f build/fuzz/CMakeCache.txt || cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	sh scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
