/*
 * schedinfo: report the scheduling policy a container's program started with.
 *
 * The policy is read in a constructor that runs before any other user code,
 * so it is what the process was given (by runc, the shim or its parent), not
 * anything main did. Output, one line:
 *
 *   policy=SCHED_FIFO priority=80 nice=0 reset_on_fork=0 runtime_ns=0 deadline_ns=0 period_ns=0
 *
 * Flags, acted on in this order after that line is printed:
 *   -caps               print "capeff=<hex>" (CapEff from /proc/self/status)
 *   -set <fifo|rr|other> <prio>
 *                       try sched_setscheduler(0, ...), print "set=ok" or
 *                       "set=error:<strerror>", then the policy line again
 *   -try <spec>         try sched_setattr(0, ...) with spec, print "try=<spec> ok" or
 *                       "try=<spec> error:<strerror>"; repeatable, tried in order. spec is
 *                       fifo:<prio>, rr:<prio>, other[:<nice>], batch[:<nice>], idle, or
 *                       deadline:<runtime_ns>:<deadline_ns>:<period_ns>
 *   -spin <sec>         print "spinning" and busy-loop, without a system call, for sec
 *                       seconds (0: until killed), as a runaway real-time thread does
 *   -sleep <sec>        sleep (so a test can exec into the container)
 *   -exit <n>           exit with status n (default 0)
 *
 * Built static by `make rootfs` into the test rootfs as /bin/schedinfo.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#define FLAG_RESET_ON_FORK 0x01 /* SCHED_FLAG_RESET_ON_FORK */

/* struct sched_attr, SCHED_ATTR_SIZE_VER0 (glibc < 2.41 does not have it). */
struct attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

struct info {
	int policy; /* without SCHED_RESET_ON_FORK */
	int priority;
	int nice;
	int reset_on_fork;
	uint64_t runtime, deadline, period;
};

static struct info at_start;

static void read_info(struct info *in)
{
	struct sched_param p = {0};
	struct attr a = {.size = sizeof(a)};
	int policy = sched_getscheduler(0);

	memset(in, 0, sizeof(*in));
	in->policy = policy < 0 ? -1 : policy & ~SCHED_RESET_ON_FORK;
	in->reset_on_fork = policy >= 0 && (policy & SCHED_RESET_ON_FORK);
	if (sched_getparam(0, &p) == 0)
		in->priority = p.sched_priority;
	errno = 0;
	in->nice = getpriority(PRIO_PROCESS, 0);
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) == 0) {
		in->reset_on_fork |= !!(a.sched_flags & FLAG_RESET_ON_FORK);
		/* Fair tasks report their slice in sched_runtime: DEADLINE only. */
		if (in->policy == SCHED_DEADLINE) {
			in->runtime = a.sched_runtime;
			in->deadline = a.sched_deadline;
			in->period = a.sched_period;
		}
	}
}

__attribute__((constructor(101))) static void record_at_start(void)
{
	read_info(&at_start);
}

static const char *policy_name(int policy)
{
	switch (policy) {
	case SCHED_OTHER: return "SCHED_OTHER";
	case SCHED_FIFO: return "SCHED_FIFO";
	case SCHED_RR: return "SCHED_RR";
	case SCHED_BATCH: return "SCHED_BATCH";
	case SCHED_IDLE: return "SCHED_IDLE";
	case SCHED_DEADLINE: return "SCHED_DEADLINE";
	default: return "UNKNOWN";
	}
}

static void print_info(const struct info *in)
{
	printf("policy=%s priority=%d nice=%d reset_on_fork=%d runtime_ns=%llu deadline_ns=%llu period_ns=%llu\n",
	       policy_name(in->policy), in->priority, in->nice, in->reset_on_fork,
	       (unsigned long long)in->runtime, (unsigned long long)in->deadline,
	       (unsigned long long)in->period);
}

static void print_capeff(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f) {
		printf("capeff=error:%s\n", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0) {
			printf("capeff=%s", line + 7 + strspn(line + 7, " \t"));
			break;
		}
	}
	fclose(f);
}

static int parse_policy(const char *s)
{
	if (strcmp(s, "fifo") == 0)
		return SCHED_FIFO;
	if (strcmp(s, "rr") == 0)
		return SCHED_RR;
	if (strcmp(s, "other") == 0)
		return SCHED_OTHER;
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: schedinfo [-caps] [-set fifo|rr|other PRIO] [-try SPEC]... [-spin SEC] [-sleep SEC] [-exit N]\n");
	exit(2);
}

/* parse_try turns a -try spec into a sched_attr; 0 on success. */
static int parse_try(const char *spec, struct attr *a)
{
	char name[16];
	long long x = 0, y = 0, z = 0;
	int n = sscanf(spec, "%15[a-z]:%lld:%lld:%lld", name, &x, &y, &z);

	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	if (n < 1)
		return -1;
	if ((strcmp(name, "fifo") == 0 || strcmp(name, "rr") == 0) && n == 2) {
		a->sched_policy = name[0] == 'f' ? SCHED_FIFO : SCHED_RR;
		a->sched_priority = (uint32_t)x;
	} else if ((strcmp(name, "other") == 0 || strcmp(name, "batch") == 0) && n <= 2) {
		a->sched_policy = name[0] == 'o' ? SCHED_OTHER : SCHED_BATCH;
		a->sched_nice = (int32_t)x;
	} else if (strcmp(name, "idle") == 0 && n == 1) {
		a->sched_policy = SCHED_IDLE;
	} else if (strcmp(name, "deadline") == 0 && n == 4) {
		a->sched_policy = SCHED_DEADLINE;
		a->sched_runtime = (uint64_t)x;
		a->sched_deadline = (uint64_t)y;
		a->sched_period = (uint64_t)z;
	} else {
		return -1;
	}
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* spin busy-loops for sec seconds (0: forever) without entering the kernel. */
static void spin(int sec)
{
	volatile unsigned long x = 0;
	double end = now_seconds() + sec;

	for (;;) {
		for (int i = 0; i < 1000000; i++)
			x++;
		if (sec > 0 && now_seconds() >= end)
			return;
	}
}

int main(int argc, char **argv)
{
	int caps = 0, set_policy = -1, set_prio = 0, sleep_sec = 0, code = 0, spin_sec = -1;
	const char *tries[16];
	int ntries = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-caps") == 0) {
			caps = 1;
		} else if (strcmp(argv[i], "-set") == 0 && i + 2 < argc) {
			set_policy = parse_policy(argv[++i]);
			set_prio = atoi(argv[++i]);
			if (set_policy < 0)
				usage();
		} else if (strcmp(argv[i], "-try") == 0 && i + 1 < argc && ntries < 16) {
			struct attr a;

			tries[ntries++] = argv[++i];
			if (parse_try(argv[i], &a) != 0)
				usage();
		} else if (strcmp(argv[i], "-spin") == 0 && i + 1 < argc) {
			spin_sec = atoi(argv[++i]);
		} else if (strcmp(argv[i], "-sleep") == 0 && i + 1 < argc) {
			sleep_sec = atoi(argv[++i]);
		} else if (strcmp(argv[i], "-exit") == 0 && i + 1 < argc) {
			code = atoi(argv[++i]);
		} else {
			usage();
		}
	}

	print_info(&at_start);
	if (caps)
		print_capeff();
	if (set_policy >= 0) {
		struct sched_param p = {.sched_priority = set_prio};
		struct info now;

		if (sched_setscheduler(0, set_policy, &p) == 0)
			printf("set=ok\n");
		else
			printf("set=error:%s\n", strerror(errno));
		read_info(&now);
		print_info(&now);
	}
	for (int i = 0; i < ntries; i++) {
		struct attr a;

		parse_try(tries[i], &a);
		if (syscall(SYS_sched_setattr, 0, &a, 0) == 0)
			printf("try=%s ok\n", tries[i]);
		else
			printf("try=%s error:%s\n", tries[i], strerror(errno));
	}
	if (spin_sec >= 0) {
		printf("spinning\n");
		fflush(stdout);
		spin(spin_sec);
	}
	fflush(stdout);
	if (sleep_sec > 0)
		sleep(sleep_sec);
	return code;
}
