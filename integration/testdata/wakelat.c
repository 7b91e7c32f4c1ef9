/*
 * wakelat: cyclictest's measuring loop for where cyclictest itself will not run.
 *
 *   wakelat [-i INTERVAL_US] [-D SEC] [-p PRIO]
 *
 * cyclictest (rt-tests 2.x) refuses to start unless it can switch to SCHED_FIFO, even with
 * --policy=other: in a container without an RT budget it cannot measure anything. wakelat is
 * its default measuring loop: a thread sleeps until an absolute CLOCK_MONOTONIC time every
 * INTERVAL_US (default 1000) for SEC seconds (default 10) and records how late it woke up; a
 * period whose wake-up time had already passed is skipped, as cyclictest does. With -p it
 * first switches to SCHED_FIFO PRIO (and fails as cyclictest does if it cannot), otherwise
 * it keeps the policy it was started with.
 *
 * Output: the subset of cyclictest's --json that the benchmarks read, one measuring thread
 * with its non-empty 1-microsecond histogram buckets, plus the policy it ran with.
 *
 * Built static by `make rootfs` into the test rootfs as /bin/wakelat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSEC 1000000000LL

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: wakelat [-i INTERVAL_US] [-D SEC] [-p PRIO]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long long interval = 1000000, seconds = 10;
	int prio = 0, i;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "-i") == 0)
			interval = atoll(argv[++i]) * 1000;
		else if (strcmp(argv[i], "-D") == 0)
			seconds = atoll(argv[++i]);
		else if (strcmp(argv[i], "-p") == 0)
			prio = atoi(argv[++i]);
		else
			usage();
	}
	if (interval <= 0 || seconds <= 0 || prio < 0 || prio > 99)
		usage();
	if (prio > 0) {
		struct sched_param p = {.sched_priority = prio};

		if (sched_setscheduler(0, SCHED_FIFO, &p) < 0) {
			fprintf(stderr, "Unable to change scheduling policy! (SCHED_FIFO %d: %s)\n", prio, strerror(errno));
			return 1;
		}
	}

	long max_cycles = (long)(seconds * NSEC / interval) + 2, cycles = 0;
	long long *lat = calloc((size_t)max_cycles, sizeof(*lat));
	if (!lat) {
		perror("wakelat");
		return 1;
	}
	long long start = now_ns(), end = start + seconds * NSEC, next = start + interval;
	while (next < end && cycles < max_cycles) {
		struct timespec ts = {.tv_sec = next / NSEC, .tv_nsec = next % NSEC};

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		long long now = now_ns();
		lat[cycles++] = now - next;
		next += interval;
		while (next <= now)
			next += interval;
	}

	qsort(lat, (size_t)cycles, sizeof(*lat), cmp_ll);
	int policy = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	struct sched_param sp = {0};
	sched_getparam(0, &sp);
	printf("{\n  \"return_code\": 0,\n  \"num_threads\": 1,\n  \"policy\": \"%s\",\n  \"priority\": %d,\n",
	       policy == SCHED_FIFO ? "SCHED_FIFO" : policy == SCHED_RR ? "SCHED_RR" : "SCHED_OTHER", sp.sched_priority);
	printf("  \"thread\": {\n    \"0\": {\n      \"histogram\": {");
	for (long j = 0; j < cycles;) {
		long long us = lat[j] / 1000;
		long n = 0;

		while (j < cycles && lat[j] / 1000 == us) {
			j++;
			n++;
		}
		printf("%s\"%lld\": %ld", n == j ? "" : ", ", us, n);
	}
	printf("},\n      \"cycles\": %ld,\n      \"min\": %lld,\n      \"max\": %lld\n    }\n  }\n}\n", cycles,
	       cycles ? lat[0] / 1000 : 0, cycles ? lat[cycles - 1] / 1000 : 0);
	return 0;
}
