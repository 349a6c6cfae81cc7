#!/usr/bin/env bash
# Build the root of a small user-mode Linux guest: a hostfs directory that
# linux.uml boots with rootfstype=hostfs rootflags=DIR init=/init.  One
# builder for the test suite (tests/uml.bash) and `make demo` (demo/demo.sh).
#
#     bash tests/uml-root.sh DIR     build a root in DIR (created if missing)
#     source tests/uml-root.sh       define the functions below, build nothing
#
# The root holds:
#   bin/busybox           a static busybox (Debian: busybox-static); /init
#                         makes its applet links at boot
#   lib/modules/VER/      the UML kernel's virtio_console module and what it
#                         depends on, with a modules.dep for modprobe and an
#                         ORDER file (dependencies first) for plain insmod
#   dev proc sys tmp root etc/passwd etc/group
#   init                  tests/uml-init: mounts devtmpfs, proc, sys, devpts,
#                         loads virtio_console, waits for /dev/hvc0 and runs
#                         a shell on it as its controlling tty (see its header)
#
# Functions
#   uml_root_kver         Set UML_KVER to the release of $UML_BIN's kernel.
#   uml_root_tree DIR     Everything but /init (what tests/uml.bash caches).
#   uml_root_init DIR     Copy $UML_INIT to DIR/init (a copy, never a link:
#                         a cached tree must not change under a guest).
#   uml_root_build DIR    Both.
# Each prints one line naming what is missing and fails, leaving DIR
# half-built (the caller removes it).
#
# Settings (environment): UML_BIN (linux.uml), UML_BUSYBOX (busybox from
# PATH), UML_MODDIR (/usr/lib/uml/modules), UML_MODULES ("virtio_console"),
# UML_INIT (uml-init beside this script).

UML_BIN=${UML_BIN:-linux.uml}
UML_BUSYBOX=${UML_BUSYBOX:-$(command -v busybox || echo /bin/busybox)}
UML_MODDIR=${UML_MODDIR:-/usr/lib/uml/modules}
UML_MODULES=${UML_MODULES:-virtio_console}
UML_INIT=${UML_INIT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/uml-init}

uml_root_kver() {
	[ -n "${UML_KVER:-}" ] && return 0
	UML_KVER=$("$UML_BIN" --version 2>/dev/null | head -n 1)
	if [ -z "$UML_KVER" ]; then
		echo "uml-root: cannot run '$UML_BIN --version' (Debian package user-mode-linux)" >&2
		return 1
	fi
}

# _uml_root_busybox_ok: $UML_BUSYBOX exists and is static.  The guest root
# has no libc, so a dynamically linked busybox (Debian's package busybox,
# not busybox-static) would leave the guest without an init that runs.  A
# dynamic ELF names its loader; a static one has no such string.
_uml_root_busybox_ok() {
	if [ ! -x "$UML_BUSYBOX" ]; then
		echo "uml-root: no busybox (Debian package busybox-static)" >&2
		return 1
	fi
	if LC_ALL=C grep -qa -e '/ld-linux' -e '/ld-musl' "$UML_BUSYBOX"; then
		echo "uml-root: $UML_BUSYBOX is dynamically linked; the guest has" \
			"no libc: install busybox-static or set UML_BUSYBOX" >&2
		return 1
	fi
}

# _uml_root_modules SRC DST: copy the modules of $UML_MODULES and their
# dependencies from SRC to DST, in load order, with their modules.dep lines.
_uml_root_modules() {
	local src=$1 dst=$2 m line ko i
	local -a order=() deps=()
	local -A seen=()
	: >"$dst/modules.dep"
	for m in $UML_MODULES; do
		line=$(grep -E "(^|/)${m}\.ko:" "$src/modules.dep") || {
			grep -qE "(^|/)${m}\.ko\$" "$src/modules.builtin" 2>/dev/null &&
				continue
			echo "uml-root: module $m not found for $UML_KVER" >&2
			return 1
		}
		# modules.dep lists a module's dependencies so that the last
		# one loads first.
		read -r -a deps <<<"${line#*:}"
		for (( i = ${#deps[@]} - 1; i >= 0; i-- )); do
			order+=("${deps[i]}")
		done
		order+=("${line%%:*}")
	done
	: >"$dst/ORDER"
	for ko in "${order[@]}"; do
		[ -n "${seen[$ko]:-}" ] && continue
		seen[$ko]=1
		case $ko in
		*.ko) ;;
		*) echo "uml-root: compressed module $ko not supported" >&2; return 1 ;;
		esac
		mkdir -p "$dst/${ko%/*}"
		cp "$src/$ko" "$dst/$ko" || return 1
		grep -E "^${ko}:" "$src/modules.dep" >>"$dst/modules.dep"
		echo "$ko" >>"$dst/ORDER"
	done
}

uml_root_tree() {
	local dir=$1 src f
	uml_root_kver || return 1
	src=$UML_MODDIR/$UML_KVER
	if [ ! -f "$src/modules.dep" ]; then
		echo "uml-root: no modules for $UML_KVER in $UML_MODDIR" >&2
		return 1
	fi
	_uml_root_busybox_ok || return 1
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc} \
		"$dir/lib/modules/$UML_KVER" || return 1
	chmod 1777 "$dir/tmp"
	cp "$UML_BUSYBOX" "$dir/bin/busybox" || return 1
	_uml_root_modules "$src" "$dir/lib/modules/$UML_KVER" || return 1
	for f in modules.builtin modules.order; do
		[ -f "$src/$f" ] && cp "$src/$f" "$dir/lib/modules/$UML_KVER/"
	done
	echo "root:x:0:0:root:/root:/bin/sh" >"$dir/etc/passwd"
	echo "root:x:0:" >"$dir/etc/group"
}

uml_root_init() {
	local dir=$1
	if [ ! -f "$UML_INIT" ]; then
		echo "uml-root: no init script $UML_INIT" >&2
		return 1
	fi
	rm -f "$dir/init"
	cp "$UML_INIT" "$dir/init" && chmod 755 "$dir/init"
}

uml_root_build() {
	[ -n "${1:-}" ] || { echo "usage: uml-root.sh DIR" >&2; return 1; }
	uml_root_tree "$1" && uml_root_init "$1"
}

# Run as a script (not sourced): build the root named on the command line.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	uml_root_build "${1:-}"
	exit
fi
