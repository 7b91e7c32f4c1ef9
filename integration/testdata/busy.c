/*
 * busy: CPU load for the latency benchmarks (bench/latency_test.go).
 *
 *   busy -n N [-t SEC] [-- PROGRAM ARGS...]
 *
 * Forks N children that spin at SCHED_OTHER (each sets SCHED_OTHER itself, and they start
 * SCHED_OTHER anyway under SCHED_RESET_ON_FORK or a SCHED_OTHER parent) and die with their
 * parent (PR_SET_PDEATHSIG) or after SEC seconds (default 600), whichever is first. Then,
 * with a PROGRAM, busy execs it: the children load the CPUs around it, in its process tree
 * and cgroup. Without one, busy prints "busy n=N" and waits for its children, so a detached
 * container (the busy neighbour) runs until it is killed or SEC is up.
 *
 * Built static by `make rootfs` into the test rootfs as /bin/busy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: busy -n N [-t SEC] [-- PROGRAM ARGS...]\n");
	exit(2);
}

static void spin(pid_t parent, int seconds)
{
	struct sched_param p = {.sched_priority = 0};
	volatile unsigned long x = 0;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(0);
	(void)sched_setscheduler(0, SCHED_OTHER, &p);
	alarm(seconds);
	for (;;)
		x++;
}

int main(int argc, char **argv)
{
	int n = -1, seconds = 600, i;
	char **prog = NULL;
	pid_t self = getpid();

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			n = atoi(argv[++i]);
		} else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			seconds = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--") == 0 && i + 1 < argc) {
			prog = &argv[i + 1];
			break;
		} else {
			usage();
		}
	}
	if (n < 0 || seconds <= 0)
		usage();

	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("busy: fork");
			return 1;
		}
		if (pid == 0)
			spin(self, seconds);
	}
	if (prog) {
		execv(prog[0], prog);
		fprintf(stderr, "busy: exec %s: %s\n", prog[0], strerror(errno));
		return 127;
	}
	printf("busy n=%d\n", n);
	fflush(stdout);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
