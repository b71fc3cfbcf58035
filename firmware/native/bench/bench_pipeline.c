/* Per-core rate of the full data-plane pipeline (parse, fixed lookup among 1M installed
 * affinities, NAT with checksum fixes, TX) and the cost of installing those affinities.
 *
 * Packets loop on net_ring0: a ring vdev created from the command line transmits on queue q into
 * the ring its RX queue q reads, so every frame the worker sends comes back to it. The installed
 * affinities rewrite each frame into the key of another affinity, so a frame is looked up, NATed
 * and sent again on every pass, forever, and nothing but the data plane's own worker runs on the
 * measured core. Walks (--walk):
 *   cycle  A_i: client_i -> VIP  DNAT to server_i; B_i: client_i -> server_i  rewritten to
 *          client_j -> VIP for the next pair j of one random cycle through all pairs, so every
 *          lookup touches a different one of the 1M entries (cache-cold, the worst case).
 *   pairs  B_i rewrites back to client_i -> VIP (plain DNAT/un-DNAT of one connection): each frame
 *          alternates between its own two entries, so only 2 x in-flight entries are hot.
 * The actions carry an explicit next-hop MAC with MAC dispatch so that the worker skips the TTL
 * decrement: a frame makes thousands of passes a second and a decrement would kill it after 255.
 *
 * Prints "result: key=value" lines for scripts/bench.sh; everything else is DPDK's log. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "bench_clock.h"
#include "edgeplane.h"
#include "packet.h"

#define FRAME_LEN 64 /* the size testpmd's txonly/tx_first frames have, FCS not included */
#define VIP RTE_IPV4(192, 0, 2, 10)
#define VIP_PORT 80
#define SERVER_PORT 8080
#define UNIT_ADDR RTE_IPV4(192, 0, 2, 1)
#define AFFINITY_TTL_S 86400 /* outlives any run: the benchmark never calls ep_poll to expire */
/* The ring net_ring creates for queue 0 of a vdev named net_ring0 (drivers/net/ring). */
#define LOOP_RING_NAME "ETH_RXTX0_net_ring0"

enum walk { WALK_CYCLE, WALK_PAIRS };

struct options {
	uint32_t flows; /* affinities to install, two per pair */
	uint32_t capacity;
	uint32_t in_flight;
	double seconds;
	double warmup_seconds;
	enum walk walk;
	int hugepages; /* EAL memory from 2 MiB hugepages (--in-memory), else 4 KiB pages (--no-huge) */
	const char *file_prefix;
};

struct tuple {
	uint32_t src, dst; /* host order */
	uint16_t sport, dport;
};

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--flows N] [--capacity N] [--in-flight N] [--seconds S] [--warmup S]\n"
		"          [--walk cycle|pairs] [--memory huge|no-huge] [--file-prefix NAME]\n",
		prog);
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "flows", required_argument, NULL, 'f' },   { "capacity", required_argument, NULL, 'c' },
		{ "in-flight", required_argument, NULL, 'i' }, { "seconds", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },  { "walk", required_argument, NULL, 'k' },
		{ "file-prefix", required_argument, NULL, 'p' }, { "memory", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct options){ .flows = 1000000, .capacity = 1u << 20, .in_flight = 512, .seconds = 5,
			       .warmup_seconds = 1, .walk = WALK_CYCLE, .file_prefix = "bench-pipeline" };
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': o->flows = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'c': o->capacity = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'i': o->in_flight = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': o->seconds = strtod(optarg, NULL); break;
		case 'w': o->warmup_seconds = strtod(optarg, NULL); break;
		case 'k':
			if (strcmp(optarg, "cycle") == 0)
				o->walk = WALK_CYCLE;
			else if (strcmp(optarg, "pairs") == 0)
				o->walk = WALK_PAIRS;
			else
				usage(argv[0]);
			break;
		case 'p': o->file_prefix = optarg; break;
		case 'm':
			if (strcmp(optarg, "huge") == 0)
				o->hugepages = 1;
			else if (strcmp(optarg, "no-huge") == 0)
				o->hugepages = 0;
			else
				usage(argv[0]);
			break;
		default: usage(argv[0]);
		}
	}
	/* the loop ring holds 1023 frames and the worker may hold one burst outside it */
	if (o->flows < 2 || o->flows % 2 || o->in_flight == 0 || o->in_flight > 1023 - 32 ||
	    o->in_flight > o->flows / 2 || o->seconds <= 0)
		usage(argv[0]);
}


static void sleep_s(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0)
		;
}


static void die(const char *what, const struct ep_error *err)
{
	fprintf(stderr, "bench_pipeline: %s: %s: %s\n", what, ep_errcode_name(err->code), err->msg);
	exit(1);
}

/* Client side of pair i: distinct source addresses so every key is unique. */
static struct tuple client_tuple(uint32_t pair)
{
	return (struct tuple){ .src = RTE_IPV4(10, 0, 0, 0) + pair, .dst = VIP,
			       .sport = (uint16_t)(1024 + pair % 60000), .dport = VIP_PORT };
}

static uint32_t server_of(uint32_t pair)
{
	return RTE_IPV4(198, 51, 100, 1 + pair % 250);
}

static void key_of(const struct tuple *t, struct ep_flow_key *k)
{
	ep_key_set4(k, IPPROTO_UDP, rte_cpu_to_be_32(t->src), rte_cpu_to_be_16(t->sport), rte_cpu_to_be_32(t->dst),
		    rte_cpu_to_be_16(t->dport));
}

static struct ep_action nat_action(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint32_t server)
{
	struct ep_action a = {
		.type = EP_ACT_FORWARD,
		.dispatch = EP_DISPATCH_MAC,
		.flags = EP_ACT_F_NEXT_HOP,
		.out_port = 0,
		.next_hop_mac = { 0x02, 0, 0, 0, 0, 0x01 },
		.nat_src_ip = src ? rte_cpu_to_be_32(src) : 0,
		.nat_src_port = sport ? rte_cpu_to_be_16(sport) : 0,
		.nat_dst_ip = rte_cpu_to_be_32(dst),
		.nat_dst_port = rte_cpu_to_be_16(dport),
		.forward_ip = rte_cpu_to_be_32(server), /* MAC dispatch names its target */
	};
	return a;
}

/* next_pair[i]: the pair whose A key B_i rewrites to. */
static uint32_t *build_walk(enum walk walk, uint32_t pairs)
{
	uint32_t *next_pair = malloc(sizeof(uint32_t) * pairs);
	if (!next_pair)
		exit(1);
	if (walk == WALK_PAIRS) {
		for (uint32_t i = 0; i < pairs; i++)
			next_pair[i] = i;
		return next_pair;
	}
	/* one cycle through a random order of all pairs (fixed seed: runs are comparable) */
	uint32_t *order = malloc(sizeof(uint32_t) * pairs);
	if (!order)
		exit(1);
	for (uint32_t i = 0; i < pairs; i++)
		order[i] = i;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = pairs - 1; i > 0; i--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t j = (uint32_t)(x % (i + 1));
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t i = 0; i < pairs; i++)
		next_pair[order[i]] = order[(i + 1) % pairs];
	free(order);
	return next_pair;
}

/* Installs the affinities and returns the seconds it took. */
static double install_affinities(uint32_t pairs, const uint32_t *next_pair)
{
	struct ep_error err;
	double start = now_s();
	for (uint32_t i = 0; i < pairs; i++) {
		struct tuple a = client_tuple(i);
		struct tuple b = a;
		b.dst = server_of(i);
		b.dport = SERVER_PORT;
		struct tuple next = client_tuple(next_pair[i]);
		struct ep_flow_key key;
		key_of(&a, &key);
		struct ep_action to_server = nat_action(0, 0, b.dst, b.dport, b.dst);
		if (ep_affinity_add(&key, &to_server, AFFINITY_TTL_S, &err))
			die("ep_affinity_add (client -> VIP)", &err);
		key_of(&b, &key);
		/* pairs: back to this pair's own client -> VIP, the source left as it is */
		int same_client = next_pair[i] == i;
		struct ep_action to_next_client = nat_action(same_client ? 0 : next.src, same_client ? 0 : next.sport,
							     VIP, VIP_PORT, b.dst);
		if (ep_affinity_add(&key, &to_next_client, AFFINITY_TTL_S, &err))
			die("ep_affinity_add (client -> server)", &err);
	}
	return now_s() - start;
}

static void build_frame(uint8_t *f, const struct tuple *t)
{
	memset(f, 0, FRAME_LEN);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
	eth->dst_addr = (struct rte_ether_addr){ { 0x02, 0, 0, 0, 0, 0x02 } };
	eth->src_addr = (struct rte_ether_addr){ { 0x02, 0, 0, 0, 0, 0x03 } };
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(FRAME_LEN - sizeof(*eth));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(t->src);
	ip->dst_addr = rte_cpu_to_be_32(t->dst);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	udp->src_port = rte_cpu_to_be_16(t->sport);
	udp->dst_port = rte_cpu_to_be_16(t->dport);
	udp->dgram_len = rte_cpu_to_be_16(FRAME_LEN - sizeof(*eth) - sizeof(*ip));
	uint8_t *payload = (uint8_t *)(udp + 1);
	for (size_t i = 0; i < FRAME_LEN - sizeof(*eth) - sizeof(*ip) - sizeof(*udp); i++)
		payload[i] = (uint8_t)i;
	ip->hdr_checksum = ep_ipv4_header_csum((const uint8_t *)ip, sizeof(*ip));
	udp->dgram_cksum = ep_ipv4_l4_csum((const uint8_t *)ip, FRAME_LEN - sizeof(*eth));
}

/* Puts in_flight frames, spread evenly over the walk, straight into the loop ring. The ring is
 * single-producer, which is safe here: it is empty and the worker transmits only frames it has
 * received, so it cannot enqueue before this one burst is complete. */
static struct rte_ring *seed_loop(struct rte_mempool *pool, uint32_t pairs, uint32_t in_flight)
{
	struct rte_ring *loop = rte_ring_lookup(LOOP_RING_NAME);
	if (!loop) {
		fprintf(stderr, "bench_pipeline: ring %s not found; rings are:\n", LOOP_RING_NAME);
		rte_ring_list_dump(stderr);
		exit(1);
	}
	struct rte_mbuf *seeds[1024];
	if (rte_pktmbuf_alloc_bulk(pool, seeds, in_flight) != 0) {
		fprintf(stderr, "bench_pipeline: cannot allocate %u seed mbufs\n", in_flight);
		exit(1);
	}
	for (uint32_t k = 0; k < in_flight; k++) {
		struct tuple t = client_tuple((uint32_t)((uint64_t)k * pairs / in_flight));
		build_frame(rte_pktmbuf_mtod(seeds[k], uint8_t *), &t);
		seeds[k]->data_len = seeds[k]->pkt_len = FRAME_LEN;
	}
	if (rte_ring_enqueue_burst(loop, (void **)seeds, in_flight, NULL) != in_flight) {
		fprintf(stderr, "bench_pipeline: loop ring %s did not take %u frames\n", LOOP_RING_NAME, in_flight);
		exit(1);
	}
	return loop;
}

/* Frames left in the loop after the worker stopped: all of them, with valid checksums. */
static uint32_t check_frames(struct rte_ring *loop, uint32_t *bad_checksums)
{
	struct rte_mbuf *m = NULL;
	uint32_t n = 0;
	*bad_checksums = 0;
	while (rte_ring_dequeue(loop, (void **)&m) == 0) {
		const uint8_t *ip = rte_pktmbuf_mtod(m, const uint8_t *) + sizeof(struct rte_ether_hdr);
		const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)ip;
		const struct rte_udp_hdr *u = (const struct rte_udp_hdr *)(h + 1);
		if (m->data_len != FRAME_LEN || h->hdr_checksum != ep_ipv4_header_csum(ip, sizeof(*h)) ||
		    u->dgram_cksum != ep_ipv4_l4_csum(ip, FRAME_LEN - sizeof(struct rte_ether_hdr)))
			(*bad_checksums)++;
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct options o;
	parse_options(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);

	char prefix_arg[128];
	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", o.file_prefix);
	/* hugepages: taken as needed from those reserved, no hugetlbfs mount (memfd) */
	char *huge_argv[] = { argv[0], "-l", "0,1", "--in-memory", "--no-pci", prefix_arg, "--vdev=net_ring0" };
	char *no_huge_argv[] = { argv[0], "-l", "0,1", "--no-huge", "-m", "2048", "--no-pci", prefix_arg,
				 "--vdev=net_ring0" };
	struct ep_error err;
	if (o.hugepages ? ep_eal_init((int)RTE_DIM(huge_argv), huge_argv, &err)
			: ep_eal_init((int)RTE_DIM(no_huge_argv), no_huge_argv, &err))
		die("ep_eal_init", &err);
	struct ep_config cfg = {
		.affinity_capacity = o.capacity,
		.flow_capacity_per_worker = 262144, /* the control application's default */
		.mbufs_per_worker = 8192,
		.miss_policy = EP_MISS_DROP,
		.timeouts_s = { 10, 3600, 30, 10, 300, 60 },
	};
	if (ep_create(&cfg, &err))
		die("ep_create", &err);
	if (ep_worker_count() != 1) {
		fprintf(stderr, "bench_pipeline: expected exactly one worker lcore, got %u\n", ep_worker_count());
		return 1;
	}
	if (ep_port_count() != 1) {
		fprintf(stderr, "bench_pipeline: expected exactly one port (net_ring0), got %u\n", ep_port_count());
		return 1;
	}
	if (ep_port_configure(0, rte_cpu_to_be_32(UNIT_ADDR), 24, 1, &err))
		die("ep_port_configure", &err);

	uint32_t pairs = o.flows / 2;
	uint32_t *next_pair = build_walk(o.walk, pairs);
	double install_s = install_affinities(pairs, next_pair);
	free(next_pair);
	if (ep_affinity_count() != o.flows) {
		fprintf(stderr, "bench_pipeline: %u affinities installed, expected %u\n", ep_affinity_count(), o.flows);
		return 1;
	}
	printf("result: affinities=%u capacity=%u\n", o.flows, o.capacity);
	printf("result: affinity_inserts_per_s=%.0f\n", o.flows / install_s);

	struct rte_mempool *pool = rte_pktmbuf_pool_create("bench_seeds", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
							   SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "bench_pipeline: seed pool: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (ep_start(&err))
		die("ep_start", &err);
	struct rte_ring *loop = seed_loop(pool, pairs, o.in_flight);

	sleep_s(o.warmup_seconds);
	struct ep_lcore_counters before, after;
	ep_worker_counters(0, &before);
	uint64_t tsc_before = rte_rdtsc(), cpu_before = worker_cpu_ns();
	sleep_s(o.seconds);
	ep_worker_counters(0, &after);
	double elapsed = (double)(rte_rdtsc() - tsc_before) / (double)rte_get_tsc_hz();
	double worker_cpu_s = (double)(worker_cpu_ns() - cpu_before) / 1e9;
	if (ep_stop(&err))
		die("ep_stop", &err);

	uint64_t tx = after.tx_pkts - before.tx_pkts, rx = after.rx_pkts - before.rx_pkts;
	uint64_t busy = after.busy_polls - before.busy_polls, idle = after.idle_polls - before.idle_polls;
	/* the worker has stopped: its final counters must balance exactly */
	struct ep_lcore_counters total;
	ep_worker_counters(0, &total);
	uint64_t drops = 0;
	for (int r = 0; r < EP_DROP__COUNT; r++) {
		drops += total.drops[r];
		if (total.drops[r])
			printf("result: drop_%s=%" PRIu64 "\n", ep_drop_reason_names[r], total.drops[r]);
	}
	uint32_t bad_checksums;
	uint32_t returned = check_frames(loop, &bad_checksums);

	printf("result: walk=%s in_flight=%u seconds=%.3f memory=%s\n", o.walk == WALK_CYCLE ? "cycle" : "pairs",
	       o.in_flight, elapsed, o.hugepages ? "huge" : "no-huge");
	printf("result: total_rx_pkts=%" PRIu64 " total_tx_pkts=%" PRIu64 " total_manager_hits=%" PRIu64
	       " misses=%" PRIu64 " drops=%" PRIu64 "\n",
	       total.rx_pkts, total.tx_pkts, total.manager_hits, total.misses, drops);
	printf("result: busy_polls=%" PRIu64 " idle_polls=%" PRIu64 " pkts_per_busy_poll=%.1f\n", busy, idle,
	       busy ? (double)rx / (double)busy : 0.0);
	printf("result: frames_returned=%u bad_checksums=%u\n", returned, bad_checksums);
	printf("result: pipeline_mpps=%.3f\n", (double)tx / elapsed / 1e6);
	printf("result: worker_cpu_share=%.3f\n", worker_cpu_s / elapsed);
	printf("result: pipeline_mpps_per_cpu=%.3f\n", worker_cpu_s > 0 ? (double)tx / worker_cpu_s / 1e6 : 0.0);

	int ok = drops == 0 && total.misses == 0 && total.manager_hits == total.rx_pkts &&
		 total.tx_pkts == total.rx_pkts && returned == o.in_flight && bad_checksums == 0 && tx > 0;
	if (!ok)
		fprintf(stderr, "bench_pipeline: correctness check failed (see the result lines)\n");
	rte_mempool_free(pool);
	ep_shutdown();
	return ok ? 0 : 1;
}
