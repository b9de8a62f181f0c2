# Front door: make deps | build | test | demo | bench | install | clean
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# make install: PREFIX for the binaries and the systemd unit, DESTDIR for staging (packages); berth.toml always
# goes to $(DESTDIR)/etc/berth, where berthd looks for it.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALLED_BINARIES = berth berthd berth-monitor berth-pull berthctl

.PHONY: all deps build test unit integration demo bench install clean format

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

# berthd finds berth-monitor and berth-pull beside itself, and berth-monitor the berth CLI beside it: one BINDIR.
# An existing berth.toml is never overwritten.
install: $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(INSTALLED_BINARIES)
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/berth
	for b in $(INSTALLED_BINARIES); do install -m 0755 $(BUILD_DIR)/bin/$$b $(DESTDIR)$(BINDIR)/$$b || exit 1; done
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' packaging/berthd.service.in > $(DESTDIR)$(UNITDIR)/berthd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/berthd.service.tmp
	mv $(DESTDIR)$(UNITDIR)/berthd.service.tmp $(DESTDIR)$(UNITDIR)/berthd.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/berth/berth.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/berth/berth.toml"; \
	else \
		install -m 0644 packaging/berth.toml $(DESTDIR)$(SYSCONFDIR)/berth/berth.toml; \
	fi

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD_DIR)
