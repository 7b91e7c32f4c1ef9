/*
 * pause: the process of a pod sandbox, like Kubernetes' pause container
 * (build/pause/linux/pause.c): it holds the pod's namespaces, reaps the
 * children it inherits and exits 0 on SIGINT or SIGTERM.
 *
 * Built static by `make rootfs` into the test rootfs as /bin/pause; the CRI
 * test (cri_test.go) makes the pod's pause image from it.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void down(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction sa_down = {.sa_handler = down};
	struct sigaction sa_reap = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};

	if (sigaction(SIGINT, &sa_down, NULL) < 0 || sigaction(SIGTERM, &sa_down, NULL) < 0 ||
	    sigaction(SIGCHLD, &sa_reap, NULL) < 0)
		return 1;
	for (;;)
		pause();
}
