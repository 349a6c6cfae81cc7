#!/usr/bin/env bats
# The documentation keeps step with the program: every option --help shows
# is in the man page's SYNOPSIS and OPTIONS, and nothing else is there.

bats_require_minimum_version 1.5.0
load helpers

MAN=$TOP/vhost-device-console.1

setup() { common_setup; }
teardown() { common_teardown; }

# help_labels: --help's option labels ("-s, --socket-path=PATH"), one a
# line: what precedes the first two spaces of each line that starts with up
# to six spaces and a dash.
help_labels() {
	"$DAEMON" --help | sed -nE 's/^ {2,6}(-.*)$/\1/p' | sed -E 's/  .*//'
}

# help_options: the long options --help shows, sorted.
help_options() {
	help_labels | grep -oE -- '--[a-z][a-z-]*' | sed 's/^--//' | sort -u
}

# man_flags SECTION: the flags the man page's section names with Fl
# (alternatives after | or , included), long names for letters, sorted.
man_flags() {
	local letters
	letters=$(help_labels | sed -nE 's/^-(.), --([a-z-]+).*/\1 \2/p')
	sed -n "/^\.Sh $1\$/,/^\.Sh /p" "$MAN" | grep -E '^\.(Op|It|Fl) ' |
	awk -v map="$letters" '
		BEGIN { n = split(map, m, "[ \n]"); for (i = 1; i < n; i += 2) long[m[i]] = m[i + 1] }
		function out(f) { sub(/^-/, "", f); print (f in long) ? long[f] : f }
		{ for (i = 1; i < NF; i++) if ($i == "Fl" || $i == ".Fl") {
			out($(i + 1))
			for (j = i + 1; j + 2 <= NF && ($(j + 1) == "|" || $(j + 1) == ","); j += 2)
				if ($(j + 2) != "Fl") out($(j + 2))
		} }' | sort -u
}

@test "--help, the man page's SYNOPSIS and its OPTIONS name the same options" {
	help_options >"$T/help"
	man_flags SYNOPSIS >"$T/synopsis"
	man_flags OPTIONS >"$T/options"
	[ "$(wc -l <"$T/help")" -ge 20 ]
	diff -u "$T/help" "$T/synopsis" || { echo "--help vs SYNOPSIS"; return 1; }
	diff -u "$T/help" "$T/options" || { echo "--help vs OPTIONS"; return 1; }
}

@test "every option the man page gives a letter has that letter in --help" {
	# "Fl s , -socket-path" in OPTIONS pairs the letter with the name
	sed -n '/^\.Sh OPTIONS$/,/^\.Sh /p' "$MAN" |
		sed -nE 's/^\.It Fl (.) , -([a-z-]+).*/-\1, --\2/p' | sort >"$T/man"
	help_labels | sed -nE 's/^(-., --[a-z-]+).*/\1/p' | sort >"$T/help"
	diff -u "$T/help" "$T/man"
}

@test "the man page is clean for mandoc -T lint" {
	command -v mandoc >/dev/null || skip "no mandoc"
	run mandoc -T lint -W warning "$MAN"
	[ "$status" -eq 0 ] && [ -z "$output" ] || { echo "$output"; return 1; }
}

@test "the man page renders --print-capabilities' output as the daemon prints it" {
	command -v mandoc >/dev/null || skip "no mandoc"
	mandoc -T ascii "$MAN" | col -b | grep -qF "$("$DAEMON" --print-capabilities)"
}
