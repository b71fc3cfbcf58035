/* Maglev tables of virtual services (src/service.c), measured through ep_service_set as the control
 * application calls it:
 *   build      time to install a service of 1000 servers with the default 65537-entry table and with
 *              the 655373 entries a pool that large wants (M >= 100 N, Maglev paper), median of runs;
 *   disruption for N = 10, 100, 1000 servers (65537 entries) and 1000 servers (655373): the share of
 *              1M random connections (5-tuple hashes, ep_key_hash) whose server changes when one of
 *              the N servers is removed, against the ideal 1/N (only the removed server's connections
 *              move), and the share that moved although their server stayed;
 *   balance    largest and smallest table share of a server against the mean, 1000 servers.
 * Prints "result: key=value" lines for scripts/bench-lb.sh; everything else is DPDK's log. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_ip.h>

#include "dp.h"

#define TABLE_SIZE 65537	  /* the default */
#define LARGE_TABLE_SIZE 655373 /* a prime >= 100 x 1000 servers */
#define SERVICE_ID 1
#define VIP RTE_IPV4(192, 0, 2, 10)
#define BUILD_SERVERS 1000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct ep_error *err)
{
	fprintf(stderr, "bench_maglev: %s: %s: %s\n", what, ep_errcode_name(err->code), err->msg);
	exit(1);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

static struct ep_server server_at(uint32_t i)
{
	return (struct ep_server){ .ip = rte_cpu_to_be_32(RTE_IPV4(10, 1, 0, 0) + i), .port = rte_cpu_to_be_16(8080),
				   .weight = 1 };
}

/* Installs servers[0..n) except index `skip` (n = none skipped) as the service. */
static void install(const struct ep_server *servers, uint32_t n, uint32_t skip, uint32_t table_size)
{
	static struct ep_server list[EP_MAX_SERVERS];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (i != skip)
			list[k++] = servers[i];
	struct ep_service_conf conf = { .id = SERVICE_ID, .vip = rte_cpu_to_be_32(VIP), .port = rte_cpu_to_be_16(80),
					.proto = IPPROTO_TCP, .mode = EP_MODE_NAT, .algorithm = EP_ALG_MAGLEV,
					.table_size = table_size };
	struct ep_error err;
	if (ep_service_set(&conf, list, k, &err))
		die("ep_service_set", &err);
}

/* The server address each connection hash gets from the installed table. */
static void pick_all(const uint32_t *hashes, uint32_t n, uint32_t *server_ip)
{
	const struct ep_service_rt *svc = ep_dp.services[SERVICE_ID];
	uint32_t turn = 0;
	for (uint32_t i = 0; i < n; i++) {
		int slot = ep_service_pick(svc, hashes[i], &turn);
		server_ip[i] = slot < 0 ? 0 : svc->servers[slot].srv.ip;
	}
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	uint32_t connections = 1000000, build_runs = 21;
	const char *file_prefix = "bench-maglev";
	static const struct option longopts[] = { { "connections", required_argument, NULL, 'c' },
						  { "build-runs", required_argument, NULL, 'r' },
						  { "file-prefix", required_argument, NULL, 'p' },
						  { NULL, 0, NULL, 0 } };
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': connections = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': build_runs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p': file_prefix = optarg; break;
		default:
			fprintf(stderr, "usage: %s [--connections N] [--build-runs N] [--file-prefix NAME]\n", argv[0]);
			return 2;
		}
	}
	if (connections == 0 || build_runs == 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	char prefix_arg[128];
	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", file_prefix);
	char *eal_argv[] = { argv[0], "-l", "0,1", "--no-huge", "-m", "256", "--no-pci", prefix_arg };
	struct ep_error err;
	if (ep_eal_init((int)RTE_DIM(eal_argv), eal_argv, &err))
		die("ep_eal_init", &err);
	struct ep_config cfg = { .affinity_capacity = 1024, .flow_capacity_per_worker = 1024, .mbufs_per_worker = 2048,
				 .miss_policy = EP_MISS_DROP, .timeouts_s = { 10, 3600, 30, 10, 300, 60 } };
	if (ep_create(&cfg, &err))
		die("ep_create", &err);

	static struct ep_server servers[EP_MAX_SERVERS];
	for (uint32_t i = 0; i < EP_MAX_SERVERS; i++)
		servers[i] = server_at(i);

	/* build: a fresh service each run (removed first), so every run assigns all slots; the default
	 * table last, so the balance below reads it */
	double *build_ms = malloc(sizeof(double) * build_runs);
	const uint32_t build_tables[] = { LARGE_TABLE_SIZE, TABLE_SIZE };
	for (size_t t = 0; t < RTE_DIM(build_tables); t++) {
		for (uint32_t r = 0; r < build_runs; r++) {
			if (ep_dp.services[SERVICE_ID] && ep_service_del(SERVICE_ID, &err))
				die("ep_service_del", &err);
			double start = now_s();
			install(servers, BUILD_SERVERS, BUILD_SERVERS, build_tables[t]);
			build_ms[r] = (now_s() - start) * 1e3;
		}
		qsort(build_ms, build_runs, sizeof(double), compare_double);
		printf("result: build_servers=%u table_size=%u build_ms_median=%.3f build_ms_min=%.3f runs=%u\n",
		       BUILD_SERVERS, build_tables[t], build_ms[build_runs / 2], build_ms[0], build_runs);
	}
	free(build_ms);

	/* balance of the 1000-server table just built */
	uint32_t *entries = calloc(EP_MAX_SERVERS, sizeof(uint32_t));
	const struct ep_service_rt *svc = ep_dp.services[SERVICE_ID];
	for (uint32_t e = 0; e < svc->pick_size; e++)
		entries[svc->table[e]]++;
	uint32_t most = 0, least = UINT32_MAX;
	for (uint32_t i = 0; i < BUILD_SERVERS; i++) {
		most = entries[i] > most ? entries[i] : most;
		least = entries[i] < least ? entries[i] : least;
	}
	double mean = (double)TABLE_SIZE / BUILD_SERVERS;
	printf("result: balance_servers=%u max_share_vs_mean=%.3f min_share_vs_mean=%.3f\n", BUILD_SERVERS, most / mean,
	       least / mean);
	free(entries);

	/* disruption: random 5-tuples hashed as the worker hashes flow keys */
	uint32_t *hashes = malloc(sizeof(uint32_t) * connections);
	uint32_t *before = malloc(sizeof(uint32_t) * connections), *after = malloc(sizeof(uint32_t) * connections);
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (uint32_t i = 0; i < connections; i++) {
		struct ep_flow_key k;
		uint64_t r = xorshift(&x);
		ep_key_set4(&k, IPPROTO_TCP, (uint32_t)r, (uint16_t)(r >> 32), rte_cpu_to_be_32(VIP), rte_cpu_to_be_16(80));
		hashes[i] = ep_key_hash(&k);
	}
	const struct { uint32_t servers, table_size; } pools[] = {
		{ 10, TABLE_SIZE }, { 100, TABLE_SIZE }, { 1000, TABLE_SIZE }, { 1000, LARGE_TABLE_SIZE }
	};
	for (size_t p = 0; p < RTE_DIM(pools); p++) {
		uint32_t n = pools[p].servers, removed = n / 2, table_size = pools[p].table_size;
		if (ep_dp.services[SERVICE_ID] && ep_service_del(SERVICE_ID, &err))
			die("ep_service_del", &err);
		install(servers, n, n, table_size);
		pick_all(hashes, connections, before);
		install(servers, n, removed, table_size); /* the same service id: surviving servers keep their slots */
		pick_all(hashes, connections, after);
		uint32_t changed = 0, needless = 0;
		for (uint32_t i = 0; i < connections; i++) {
			if (before[i] == after[i])
				continue;
			changed++;
			if (before[i] != servers[removed].ip)
				needless++;
		}
		double share = (double)changed / connections, ideal = 1.0 / n;
		printf("result: servers=%u table=%u moved_share=%.5f ideal=%.5f moved_vs_ideal=%.3f moved_needlessly_share=%.5f\n",
		       n, table_size, share, ideal, share / ideal, (double)needless / connections);
	}
	free(hashes);
	free(before);
	free(after);
	ep_shutdown();
	return 0;
}
