# The two set-up commands. Both install what is missing, then build.
#   make run   - build and start the embedded default (airlock up)
#   make test  - build with ASan+UBSan and run every test (unit, fuzz corpora, e2e)
# Other targets: make build, make fuzz (bounded libFuzzer runs), make bench,
# make lint (banned calls, cppcheck, clang-tidy), make clean.

JOBS ?= $(shell nproc)
BUILD ?= build
TBUILD ?= build-test
FBUILD ?= build-fuzz
FUZZ_SECONDS ?= 30

.PHONY: all deps build run test fuzz bench clean lint

all: build

deps:
	scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/airlock up

test: deps
	CC=clang cmake -S . -B $(TBUILD) -DCMAKE_BUILD_TYPE=Debug -DAL_SANITIZE=address,undefined >/dev/null
	cmake --build $(TBUILD) -j $(JOBS)
	cd $(TBUILD) && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	CC=clang cmake -S . -B $(FBUILD) -DCMAKE_BUILD_TYPE=Debug -DAL_FUZZ=ON -DAL_SANITIZE=address,undefined >/dev/null
	cmake --build $(FBUILD) -j $(JOBS)
	scripts/fuzz.sh $(FBUILD) $(FUZZ_SECONDS)

bench: build
	bench/run.sh $(BUILD)

lint: deps
	CC=clang cmake -S . -B $(TBUILD) -DCMAKE_BUILD_TYPE=Debug -DAL_SANITIZE=address,undefined >/dev/null
	tools/check-banned.sh
	tools/static-check.sh $(TBUILD)

clean:
	rm -rf $(BUILD) $(TBUILD) $(FBUILD)
