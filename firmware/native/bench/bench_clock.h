/* Time measurement shared by the benchmarks: wall clock, and the CPU time of the worker lcore's
 * thread (the figure that compares on a shared machine). */
#ifndef EP_BENCH_CLOCK_H
#define EP_BENCH_CLOCK_H

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nanoseconds the worker lcore's thread has run on a CPU (/proc schedstat). Other work shares the
 * cores of the benchmark machine, so the rate per CPU-second of the worker is the figure that
 * compares across runs; the wall-clock rate is printed next to it. */
static uint64_t worker_cpu_ns(void)
{
	DIR *tasks = opendir("/proc/self/task");
	uint64_t ns = 0;
	struct dirent *e;
	while (tasks && (e = readdir(tasks)) != NULL) {
		char path[300], comm[64] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int is_worker = fgets(comm, sizeof(comm), f) && strcmp(comm, "rte-worker-1\n") == 0;
		fclose(f);
		if (!is_worker)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%" SCNu64, &ns) != 1)
			ns = 0;
		if (f)
			fclose(f);
	}
	if (tasks)
		closedir(tasks);
	return ns;
}

#endif
