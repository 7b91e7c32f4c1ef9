/*
 * mixedapp: a real-time application with SCHED_OTHER parts, for the quota benchmark
 * (bench/quota_test.go).
 *
 *   mixedapp [-d SEC] [-i INTERVAL_US] [-w WORK_US] [-b BURNERS]
 *
 * The main thread is the RT loop: it runs with whatever policy it was started with (the
 * shim's SCHED_FIFO in a container, chrt on the host) and wakes every INTERVAL_US (default
 * 1000) on an absolute timer. Each cycle it wakes a helper thread, which runs SCHED_OTHER and
 * works WORK_US (default 50) of CPU time, and waits for its answer, as an RT thread waits on
 * its application's logging, I/O or memory management. BURNERS (default 2) more SCHED_OTHER
 * threads spin: the rest of the application's work, which uses up a CFS quota. The cycle's
 * latency is the time from its scheduled wake-up to the helper's answer; a cycle whose
 * wake-up time had already passed when the previous one ended is missed (not run, counted).
 *
 * Output, after SEC seconds (default 10):
 *
 *   mixedapp policy=SCHED_FIFO priority=80 helper=SCHED_OTHER burners=2 interval_us=1000 work_us=50
 *   cycles=9990 missed=10 min_us=55 p50_us=60 p99_us=120 max_us=75123
 *   h <us> <count>      one line per 1-microsecond bucket that holds a cycle
 *
 * Built static by `make rootfs` into the test rootfs as /bin/mixedapp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSEC 1000000000LL

static sem_t request, answer;
static long long work_ns = 50000;
static volatile int stop;

static long long now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static const char *policy_name(int policy)
{
	switch (policy) {
	case SCHED_OTHER: return "SCHED_OTHER";
	case SCHED_FIFO: return "SCHED_FIFO";
	case SCHED_RR: return "SCHED_RR";
	case SCHED_BATCH: return "SCHED_BATCH";
	case SCHED_IDLE: return "SCHED_IDLE";
	default: return "UNKNOWN";
	}
}

/* to_other makes the calling thread SCHED_OTHER (lowering a policy needs no privilege). */
static void to_other(void)
{
	struct sched_param p = {.sched_priority = 0};

	if (sched_setscheduler(0, SCHED_OTHER, &p) < 0)
		fprintf(stderr, "mixedapp: sched_setscheduler(SCHED_OTHER): %s\n", strerror(errno));
}

static void *helper(void *arg)
{
	(void)arg;
	to_other();
	for (;;) {
		while (sem_wait(&request) < 0)
			;
		if (stop)
			return NULL;
		/* Work: CPU time, so a throttled helper takes longer in wall time. */
		long long until = now_ns(CLOCK_THREAD_CPUTIME_ID) + work_ns;
		while (now_ns(CLOCK_THREAD_CPUTIME_ID) < until)
			;
		sem_post(&answer);
	}
}

static void *burner(void *arg)
{
	volatile unsigned long x = 0;

	(void)arg;
	to_other();
	while (!stop)
		x++;
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* pct is the nearest-rank p-th percentile of the n sorted values. */
static long long pct(const long long *v, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void usage(void)
{
	fprintf(stderr, "usage: mixedapp [-d SEC] [-i INTERVAL_US] [-w WORK_US] [-b BURNERS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long long seconds = 10, interval_ns = 1000000;
	int burners = 2, i;
	struct sched_param sp = {0};
	int policy = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	pthread_t th;

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "-d") == 0)
			seconds = atoll(argv[++i]);
		else if (strcmp(argv[i], "-i") == 0)
			interval_ns = atoll(argv[++i]) * 1000;
		else if (strcmp(argv[i], "-w") == 0)
			work_ns = atoll(argv[++i]) * 1000;
		else if (strcmp(argv[i], "-b") == 0)
			burners = atoi(argv[++i]);
		else
			usage();
	}
	if (seconds <= 0 || interval_ns <= 0 || work_ns < 0 || burners < 0)
		usage();
	sched_getparam(0, &sp);

	long max_cycles = (long)(seconds * NSEC / interval_ns) + 2;
	long long *lat = calloc((size_t)max_cycles, sizeof(*lat));
	if (!lat || sem_init(&request, 0, 0) < 0 || sem_init(&answer, 0, 0) < 0) {
		perror("mixedapp");
		return 1;
	}
	if (pthread_create(&th, NULL, helper, NULL) != 0) {
		fprintf(stderr, "mixedapp: cannot create the helper thread\n");
		return 1;
	}
	for (i = 0; i < burners; i++) {
		if (pthread_create(&th, NULL, burner, NULL) != 0) {
			fprintf(stderr, "mixedapp: cannot create a burner thread\n");
			return 1;
		}
	}
	printf("mixedapp policy=%s priority=%d helper=SCHED_OTHER burners=%d interval_us=%lld work_us=%lld\n",
	       policy_name(policy), sp.sched_priority, burners, interval_ns / 1000, work_ns / 1000);
	fflush(stdout);

	long long start = now_ns(CLOCK_MONOTONIC), end = start + seconds * NSEC;
	long long next = start + interval_ns;
	long cycles = 0, missed = 0;
	while (next < end && cycles < max_cycles) {
		struct timespec ts = {.tv_sec = next / NSEC, .tv_nsec = next % NSEC};

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		sem_post(&request);
		while (sem_wait(&answer) < 0)
			;
		long long done = now_ns(CLOCK_MONOTONIC);
		lat[cycles++] = done - next;
		next += interval_ns;
		if (next <= done) {
			long long skip = (done - next) / interval_ns + 1;
			missed += skip;
			next += skip * interval_ns;
		}
	}
	stop = 1;
	sem_post(&request);

	qsort(lat, (size_t)cycles, sizeof(*lat), cmp_ll);
	if (cycles == 0) {
		printf("cycles=0 missed=%ld\n", missed);
		return 1;
	}
	printf("cycles=%ld missed=%ld min_us=%lld p50_us=%lld p99_us=%lld max_us=%lld\n", cycles, missed,
	       lat[0] / 1000, pct(lat, cycles, 50) / 1000, pct(lat, cycles, 99) / 1000, lat[cycles - 1] / 1000);
	for (long j = 0; j < cycles;) {
		long long us = lat[j] / 1000;
		long n = 0;

		while (j < cycles && lat[j] / 1000 == us) {
			j++;
			n++;
		}
		printf("h %lld %ld\n", us, n);
	}
	fflush(stdout);
	return 0;
}
