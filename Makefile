# vhost-device-console - a vhost-user VirtIO console backend
# See README for the commands that matter: `make demo`, `make run`, `make check`.
.POSIX:

VERSION   = 0.1.0
PREFIX    = /usr/local
BINDIR    = $(PREFIX)/bin
MANPREFIX = $(PREFIX)/share/man
DATADIR   = $(PREFIX)/share
DESTDIR   =

CC      = cc
CFLAGS  = -O2 -g
LDFLAGS =
# What the code needs, whatever CFLAGS the user passes.
VC_CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -DVERSION=\"$(VERSION)\"
VC_CFLAGS   = -std=c11 -Wall -Wextra -Werror $(VC_CPPFLAGS) $(CFLAGS)
# The test programs play QEMU and a Linux guest: they may use Linux calls.
TEST_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -g

BIN  = vhost-device-console
SRC  = vhost-device-console.c console.c vhu.c trace.c util.c backends/network.c backends/unix.c backends/pty.c backends/clients.c backends/telnet.c backends/nested.c session.c replay.c asciicast.c backends/web.c backends/websocket.c
HDR  = console.h le.h vhu.h trace.h util.h virtio.h virtio_console.h backends/backend.h session.h replay.h asciicast.h backends/clients.h backends/telnet.h backends/websocket.h backends/web-page.h
TESTBIN = tests/frontend tests/ptyrun tests/clients tests/fdrun tests/wsunit tests/wsclient tests/sessunit

# Where `make run` puts the vhost-user socket (device 0 is $(RUN_SOCKET)0).
RUN_SOCKET = /tmp/vhost-device-console.sock
RUN_ARGS   = --backend=nested

all: $(BIN)

$(BIN): $(SRC) $(HDR)
	$(CC) $(VC_CFLAGS) $(LDFLAGS) -o $@ $(SRC)

# The web backend's page, web/console.html, as a C string (WEB_PAGE).
backends/web-page.h: web/console.html
	{ echo '/* Generated from web/console.html by the Makefile. */'; \
	  echo '#define WEB_PAGE \'; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n" \\/' web/console.html; \
	  echo '""'; } >$@

# xterm.js for the web backend's page (--web-assets $(WEB_ASSETS)), at the
# version web/package-lock.json pins; never committed.
WEB_ASSETS = web/node_modules/@xterm/xterm
web-assets: $(WEB_ASSETS)/lib/xterm.js
$(WEB_ASSETS)/lib/xterm.js: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $@

# The browser test's driver: playwright-core (pinned in tests/browser/).
browser-deps: tests/browser/node_modules/playwright-core/package.json
tests/browser/node_modules/playwright-core/package.json: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $@

# ASan + UBSan build for the test suite (clang's runtimes).
asan: $(BIN).asan
$(BIN).asan: $(SRC) $(HDR)
	clang $(VC_CFLAGS) -O1 -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=undefined \
		-o $@ $(SRC)

# A small static binary against musl (Debian: musl-tools): -Os and
# stripped, since it is the one to copy onto a host as it is (README,
# "Portability", gives its size).
static: $(BIN).static
# Small: -Os, stripped, every function in its own section so the linker
# drops what nothing calls, no unwind tables (C, no exceptions; a
# debugger uses the unstripped build), and no page-aligned padding
# between code and data, no RELRO page, no build id.
STATIC_CFLAGS = -Os -s -static -ffunction-sections -fdata-sections \
	-fno-asynchronous-unwind-tables -Wl,--gc-sections \
	-Wl,-z,noseparate-code -Wl,-z,norelro -Wl,--build-id=none
$(BIN).static: $(SRC) $(HDR)
	musl-gcc $(VC_CFLAGS) $(STATIC_CFLAGS) -o $@ $(SRC)
	@ls -l $@ | awk '{print "static binary: " $$5 " bytes"}'

# The test frontend (tests/fe/frontend.h is its contract).
FE_SRC = tests/fe/mem.c tests/fe/record.c tests/fe/msg.c tests/fe/ring.c \
	tests/fe/steps.c tests/fe/hostile.c tests/fe/proto.c tests/fe/main.c
FE_HDR = tests/fe/frontend.h tests/record.h virtio_console.h virtio.h
tests/frontend: $(FE_SRC) $(FE_HDR)
	$(CC) $(TEST_CFLAGS) -o $@ $(FE_SRC)
tests/ptyrun: tests/ptyrun.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/ptyrun.c
tests/clients: tests/clients.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/clients.c
tests/fdrun: tests/fdrun.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/fdrun.c
tests/wsunit: tests/wsunit.c backends/websocket.c backends/websocket.h
	$(CC) $(TEST_CFLAGS) -o $@ tests/wsunit.c backends/websocket.c
# The session's flush and telnet's encoding at their API (no daemon).
tests/sessunit: tests/sessunit.c session.c session.h replay.c replay.h backends/telnet.c backends/telnet.h util.c util.h
	$(CC) $(TEST_CFLAGS) -o $@ tests/sessunit.c session.c replay.c backends/telnet.c util.c
tests/wsclient: tests/wsclient.c backends/websocket.c backends/websocket.h
	$(CC) $(TEST_CFLAGS) -o $@ tests/wsclient.c backends/websocket.c

# Another architecture, run and not only built (README, "Portability"):
# `make check-arch ARCH=s390x` (aarch64, armhf, s390x, i386) cross-builds
# the daemon and the test frontend into build/$(ARCH)/, beside the native
# build, and runs the protocol and data tests with both under qemu-user.
# Linked statically, so that no foreign libc needs installing (i386 then
# runs on an x86-64 host as it is).  DEB_$(ARCH): its Debian packages.
ARCH = s390x
CROSS_aarch64 = aarch64-linux-gnu-
CROSS_armhf   = arm-linux-gnueabihf-
CROSS_s390x   = s390x-linux-gnu-
CROSS_i386    = i686-linux-gnu-
EMU_aarch64 = qemu-aarch64
EMU_armhf   = qemu-arm
EMU_s390x   = qemu-s390x
EMU_i386    =
DEB_aarch64 = gcc-aarch64-linux-gnu qemu-user
DEB_armhf   = gcc-arm-linux-gnueabihf qemu-user
DEB_s390x   = gcc-s390x-linux-gnu qemu-user
DEB_i386    = gcc-i686-linux-gnu
ARCH_CC    = $(CROSS_$(ARCH))gcc
ARCH_EMU   = $(EMU_$(ARCH))
ARCH_DIR   = build/$(ARCH)
ARCH_TESTS = tests/protocol.bats tests/data.bats
arch: $(ARCH_DIR)/$(BIN) $(ARCH_DIR)/tests/frontend
$(ARCH_DIR)/$(BIN): $(SRC) $(HDR)
	mkdir -p $(ARCH_DIR)
	$(ARCH_CC) $(VC_CFLAGS) -static -o $@ $(SRC)
$(ARCH_DIR)/tests/frontend: $(FE_SRC) $(FE_HDR)
	mkdir -p $(ARCH_DIR)/tests
	$(ARCH_CC) $(TEST_CFLAGS) -static -o $@ $(FE_SRC)
check-arch:
	sh tests/deps.sh $(DEB_$(ARCH))
	$(MAKE) arch ARCH=$(ARCH)
	VC_DAEMON=$$PWD/$(ARCH_DIR)/$(BIN) VC_WRAP="$(ARCH_EMU)" \
	VC_TESTBIN=$$PWD/$(ARCH_DIR)/tests VC_EMU="$(ARCH_EMU)" bats $(ARCH_TESTS)

# make run says what it waits for and how to attach a frontend, then runs
# the daemon in the foreground (README, "The two commands").
run: $(BIN)
	@echo "make run: device 0 waits for a vhost-user frontend on $(RUN_SOCKET)0."
	@echo "Attach one from another terminal, e.g.:"
	@echo "  make demo SOCKET=$(RUN_SOCKET)0    # a user-mode Linux guest"
	@echo "  linux.uml mem=128M rootfstype=hostfs rootflags=ROOT rw init=/init virtio_uml.device=$(RUN_SOCKET)0:3"
	@echo "  qemu-system-x86_64 ... -chardev socket,id=c0,path=$(RUN_SOCKET)0 -device vhost-user-test-device-pci,chardev=c0,virtio-id=3,num_vqs=4,config_size=12,vq_size=256"
	@echo "(README: \"With user-mode Linux\", \"With QEMU\".)  The guest's console is this terminal; Ctrl-] then q quits."
	./$(BIN) --socket-path=$(RUN_SOCKET) $(RUN_ARGS)

# make demo: a user-mode Linux guest's shell through the daemon, on this
# terminal, in one command (demo/demo.sh; Debian's user-mode-linux and
# busybox-static, installed as for make check).  BACKEND=network, unix,
# pty or web (or a list) serves the console there instead, until Ctrl-C;
# SOCKET=PATH0 boots only the guest, against a daemon already listening
# there (make run's: $(RUN_SOCKET)0).
BACKEND = nested
SOCKET  =
demo: $(BIN)
	@s='$(SOCKET)'; exec bash demo/demo.sh '$(BACKEND)' $${s:+"--socket=$$s"}

# The programs the test suite runs (tests/), without running it.
test-programs: $(TESTBIN)

# The test suite. Run as root it installs what it needs from Debian;
# otherwise it names the one apt-get line to run and stops.
check: $(BIN) $(TESTBIN)
	sh tests/deps.sh
	@if command -v npm >/dev/null; then $(MAKE) web-assets browser-deps; \
	else echo "no npm: the web page and browser tests are skipped"; fi
	bats tests

check-asan: $(BIN).asan $(TESTBIN)
	sh tests/deps.sh
	VC_DAEMON=$$PWD/$(BIN).asan bats tests

# The long soak: 1000 frontend cycles, 10000 client connects; fd count
# and RSS must not grow (a short version runs in `make check`).
soak: $(BIN) $(TESTBIN)
	sh tests/deps.sh
	bash tests/soak.sh

# libFuzzer targets (clang, Debian's libclang-rt-14-dev): the vhost-user
# message stream, and guest rings behind the console device.
FUZZ_CFLAGS = -std=c11 -Wall -Wextra -Werror -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(VC_CPPFLAGS)
FUZZ_TIME   = 60
FUZZ = fuzz/fuzz_vhu fuzz/fuzz_ring
# What fuzz.h #includes as it is: the device, vhost-user, util, sessions.
FUZZ_SRC = console.c vhu.c trace.c util.c session.c replay.c
FUZZ_HDR = console.h le.h vhu.h trace.h util.h virtio.h virtio_console.h session.h backends/backend.h
fuzz: $(FUZZ)
fuzz/fuzz_vhu: fuzz/fuzz_vhu.c fuzz/fuzz.h $(FUZZ_SRC) $(FUZZ_HDR)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_vhu.c
fuzz/fuzz_ring: fuzz/fuzz_ring.c fuzz/fuzz.h $(FUZZ_SRC) $(FUZZ_HDR)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_ring.c
# Run each target for FUZZ_TIME seconds from the seeds the harness records
# (its recorder, VC_RECORD, is tests/record.h).
fuzz-run: $(FUZZ) tests/frontend $(BIN)
	sh fuzz/run.sh $(FUZZ_TIME)
# Line coverage of vhu.c and the console device over the corpora.
fuzz-cov:
	sh fuzz/cov.sh

# Benchmarks (bench/): each prints its figures and a baseline from the same
# run; bench/run.sh gathers them into one table (README, "Performance").
BENCHBIN = bench/tcpbench bench/conread
bench/tcpbench: bench/tcpbench.c
	$(CC) $(VC_CFLAGS) $(LDFLAGS) -o $@ bench/tcpbench.c
bench/conread: bench/conread.c
	$(CC) $(VC_CFLAGS) $(LDFLAGS) -o $@ bench/conread.c
bench: $(BIN) tests/frontend tests/clients $(BENCHBIN)
	bash bench/run.sh

# The user-mode Linux guest end to end with the daemon under valgrind.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
check-valgrind: $(BIN) $(TESTBIN)
	sh tests/deps.sh
	VC_WRAP="$(VALGRIND)" bats tests/uml.bats

# Boot the QEMU lab guest (../shared/qemu-lab) against the daemon.
check-qemu: $(BIN)
	bash tests/check-qemu.sh

# The headline benchmark: the QEMU lab guest's console through the daemon
# against QEMU's own virtconsole (LAB_DIR: where the lab is built).
bench-qemu: $(BIN) bench/conread
	bash bench/qemu.sh

# The binary, the man page, and the vhost-user backend description that
# management software (libvirt) finds in $(DATADIR)/qemu/vhost-user/.
JSON = 50-$(BIN).json
install: $(BIN)
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1 \
		$(DESTDIR)$(DATADIR)/qemu/vhost-user
	cp -f $(BIN) $(DESTDIR)$(BINDIR)/$(BIN)
	chmod 755 $(DESTDIR)$(BINDIR)/$(BIN)
	cp -f $(BIN).1 $(DESTDIR)$(MANPREFIX)/man1/$(BIN).1
	chmod 644 $(DESTDIR)$(MANPREFIX)/man1/$(BIN).1
	sed 's|@BINDIR@|$(BINDIR)|' $(JSON).in > $(DESTDIR)$(DATADIR)/qemu/vhost-user/$(JSON)
	chmod 644 $(DESTDIR)$(DATADIR)/qemu/vhost-user/$(JSON)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/$(BIN) $(DESTDIR)$(MANPREFIX)/man1/$(BIN).1 \
		$(DESTDIR)$(DATADIR)/qemu/vhost-user/$(JSON)

clean:
	rm -f $(BIN) $(BIN).asan $(BIN).static $(TESTBIN) $(FUZZ) $(BENCHBIN) backends/web-page.h
	rm -rf build

.PHONY: test-programs all asan static arch check-arch web-assets browser-deps run demo check check-asan check-valgrind bench bench-qemu check-qemu soak fuzz fuzz-run fuzz-cov install uninstall clean
