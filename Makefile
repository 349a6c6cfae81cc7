# vhost-device-console - a vhost-user VirtIO console backend
# See README for the two commands that matter: `make run` and `make check`.
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
VC_CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DVERSION=\"$(VERSION)\"
VC_CFLAGS   = -std=c11 -Wall -Wextra -Werror $(VC_CPPFLAGS) $(CFLAGS)
# The test programs play QEMU and a Linux guest: they may use Linux calls.
TEST_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -g

BIN  = vhost-device-console
SRC  = vhost-device-console.c vhu.c util.c backends/network.c backends/unix.c backends/pty.c backends/clients.c backends/nested.c backends/session.c
HDR  = vhu.h util.h virtio_console.h backends/backend.h backends/session.h backends/clients.h
TESTBIN = tests/frontend tests/ptyrun tests/clients tests/fdrun

# Where `make run` puts the vhost-user socket (device 0 is $(RUN_SOCKET)0).
RUN_SOCKET = /tmp/vhost-device-console.sock
RUN_ARGS   = --backend=nested

all: $(BIN)

$(BIN): $(SRC) $(HDR)
	$(CC) $(VC_CFLAGS) $(LDFLAGS) -o $@ $(SRC)

# ASan + UBSan build for the test suite (clang's runtimes).
asan: $(BIN).asan
$(BIN).asan: $(SRC) $(HDR)
	clang $(VC_CFLAGS) -O1 -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=undefined \
		-o $@ $(SRC)

# A static binary against musl (Debian: musl-tools).
static: $(BIN).static
$(BIN).static: $(SRC) $(HDR)
	musl-gcc $(VC_CFLAGS) -static -o $@ $(SRC)
	@ls -l $@ | awk '{print "static binary: " $$5 " bytes"}'

tests/frontend: tests/frontend.c virtio_console.h
	$(CC) $(TEST_CFLAGS) -o $@ tests/frontend.c
tests/ptyrun: tests/ptyrun.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/ptyrun.c
tests/clients: tests/clients.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/clients.c
tests/fdrun: tests/fdrun.c
	$(CC) $(TEST_CFLAGS) -o $@ tests/fdrun.c

run: $(BIN)
	./$(BIN) --socket-path=$(RUN_SOCKET) $(RUN_ARGS)

# The test suite. Run as root it installs what it needs from Debian;
# otherwise it names the one apt-get line to run and stops.
check: $(BIN) $(TESTBIN)
	sh tests/deps.sh
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
fuzz: $(FUZZ)
fuzz/fuzz_vhu: fuzz/fuzz_vhu.c fuzz/fuzz.h $(SRC) $(HDR)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_vhu.c
fuzz/fuzz_ring: fuzz/fuzz_ring.c fuzz/fuzz.h $(SRC) $(HDR)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_ring.c
# Run each target for FUZZ_TIME seconds from the seeds the harness records
# (its recorder, VC_RECORD, is tests/record.h).
tests/frontend: tests/record.h
fuzz-run: $(FUZZ) tests/frontend $(BIN)
	sh fuzz/run.sh $(FUZZ_TIME)
# Line coverage of vhu.c and the console device over the corpora.
fuzz-cov:
	sh fuzz/cov.sh

# Benchmarks (bench/): each prints its figures and a baseline from the same
# run; bench/run.sh gathers them into one table (README, "Performance").
BENCHBIN = bench/tcpbench
bench/tcpbench: bench/tcpbench.c
	$(CC) $(VC_CFLAGS) $(LDFLAGS) -o $@ bench/tcpbench.c
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
	rm -f $(BIN) $(BIN).asan $(BIN).static $(TESTBIN) $(FUZZ) $(BENCHBIN)

.PHONY: all asan static run check check-asan check-valgrind bench check-qemu soak fuzz fuzz-run fuzz-cov install uninstall clean
