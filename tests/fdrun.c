/*
 * tests/fdrun - hand a daemon an already-connected vhost-user socket, as a
 * management layer does with --fd.
 *
 * usage: fdrun PATH CMD [ARGS...]
 *
 * Listens on the UNIX socket PATH, accepts one connection, closes the
 * listener (and unlinks PATH), puts the connection on fd 3 and execs CMD
 * ARGS... --fd=3.  The test frontend connects to PATH as usual; from then
 * on it talks to the daemon directly, fds included.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char **args;
	int l, c, i;

	if (argc < 3 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: fdrun PATH CMD [ARGS...]\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0) {
		fprintf(stderr, "fdrun: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	c = accept(l, NULL, NULL);
	if (c < 0) {
		fprintf(stderr, "fdrun: accept: %s\n", strerror(errno));
		return 1;
	}
	close(l);
	unlink(argv[1]);
	if (c != 3 && (dup2(c, 3) < 0 || close(c) < 0)) {
		fprintf(stderr, "fdrun: dup2: %s\n", strerror(errno));
		return 1;
	}
	args = calloc((size_t)argc, sizeof *args);
	if (!args)
		return 1;
	for (i = 2; i < argc; i++)
		args[i - 2] = argv[i];
	args[argc - 2] = "--fd=3";
	execvp(args[0], args);
	fprintf(stderr, "fdrun: %s: %s\n", args[0], strerror(errno));
	return 127;
}
