/*
 * chrt: set a real-time policy and run a program with it, as util-linux's chrt does for the
 * form users type in `docker run ... IMAGE chrt -f 80 app` (Debian's busybox-static, which
 * the test rootfs is made of, has no chrt applet). Only that form:
 *
 *   chrt [-f|-r|-o|-b|-i] PRIORITY COMMAND [ARG...]
 *
 * -f SCHED_FIFO (the default), -r SCHED_RR, -o SCHED_OTHER, -b SCHED_BATCH, -i SCHED_IDLE.
 * On failure it prints util-linux's message and exits 1:
 *
 *   chrt: failed to set pid 0's policy: Operation not permitted
 *
 * Built static by `make rootfs` into the test rootfs as /bin/chrt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: chrt [-f|-r|-o|-b|-i] PRIORITY COMMAND [ARG...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int policy = SCHED_FIFO, i = 1;
	char *end;

	if (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-f") == 0)
			policy = SCHED_FIFO;
		else if (strcmp(argv[i], "-r") == 0)
			policy = SCHED_RR;
		else if (strcmp(argv[i], "-o") == 0)
			policy = SCHED_OTHER;
		else if (strcmp(argv[i], "-b") == 0)
			policy = SCHED_BATCH;
		else if (strcmp(argv[i], "-i") == 0)
			policy = SCHED_IDLE;
		else
			usage();
		i++;
	}
	if (argc - i < 2)
		usage();
	errno = 0;
	long prio = strtol(argv[i], &end, 10);
	if (errno != 0 || *end != '\0' || prio < 0 || prio > 99)
		usage();
	struct sched_param sp = {.sched_priority = (int)prio};
	if (sched_setscheduler(0, policy, &sp) < 0) {
		fprintf(stderr, "chrt: failed to set pid 0's policy: %s\n", strerror(errno));
		return 1;
	}
	execvp(argv[i + 1], &argv[i + 1]);
	fprintf(stderr, "chrt: failed to execute %s: %s\n", argv[i + 1], strerror(errno));
	return 1;
}
