/* Lifecycle and the control-thread side of the C API: EAL, pools, tables, ports, workers,
 * manager affinities, wildcard commits, counters, punt and inject. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dp.h"
#include "packet.h"

struct ep_dp ep_dp;

static const char *const errcode_names[] = {
	"OK", "EINVAL", "EEAL", "ENOPORT", "EFULL", "ENOENT", "ESTATE", "ENOMEM", "ERULE",
};

const char *ep_errcode_name(int code)
{
	if (code < 0 || code >= (int)RTE_DIM(errcode_names))
		return "EINVAL";
	return errcode_names[code];
}

int ep_fail(struct ep_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

void ep_rcu_wait(void)
{
	if (ep_dp.qsbr)
		rte_rcu_qsbr_synchronize(ep_dp.qsbr, RTE_QSBR_THRID_INVALID);
}

int ep_eal_init(int argc, char **argv, struct ep_error *err)
{
	if (ep_dp.eal_ready)
		return ep_fail(err, EP_ESTATE, "EAL already initialised in this process");
	int rc = rte_eal_init(argc, argv);
	if (rc < 0)
		return ep_fail(err, EP_EEAL, "rte_eal_init failed: %s (check lcores, memory, devices and --file-prefix)",
			       rte_strerror(rte_errno));
	ep_dp.eal_ready = 1;
	ep_dp.tsc_hz = rte_get_tsc_hz();
	return 0;
}

static int create_worker(uint32_t index, uint32_t lcore, struct ep_error *err)
{
	char name[RTE_MEMZONE_NAMESIZE];
	int socket = (int)rte_lcore_to_socket_id(lcore);
	struct ep_worker *w = rte_zmalloc_socket("ep_worker", sizeof(*w), RTE_CACHE_LINE_SIZE, socket);
	if (!w)
		return ep_fail(err, EP_ENOMEM, "no memory for worker %u", index);
	ep_dp.workers[index] = w;
	w->index = index;
	w->lcore = lcore;
	snprintf(name, sizeof(name), "ep_pool_%u", index);
	w->pool = rte_pktmbuf_pool_create(name, ep_dp.cfg.mbufs_per_worker, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!w->pool)
		return ep_fail(err, EP_ENOMEM, "mbuf pool for worker %u: %s", index, rte_strerror(rte_errno));
	snprintf(name, sizeof(name), "ep_learned_%u", index);
	int rc = ep_flow_table_create(&w->learned, name, ep_dp.cfg.flow_capacity_per_worker, socket);
	if (rc)
		return ep_fail(err, EP_ENOMEM, "flow table of %u entries for worker %u: %s",
			       ep_dp.cfg.flow_capacity_per_worker, index, rte_strerror(-rc));
	w->server_counters = rte_zmalloc_socket(
		"ep_srv_counters", sizeof(struct ep_counter_pair) * EP_MAX_SERVICES * EP_MAX_SERVERS, RTE_CACHE_LINE_SIZE,
		socket);
	w->server_flows = rte_zmalloc_socket("ep_srv_flows", sizeof(uint64_t) * EP_MAX_SERVICES * EP_MAX_SERVERS,
					     RTE_CACHE_LINE_SIZE, socket);
	w->server_handshakes = rte_zmalloc_socket(
		"ep_srv_handshakes", sizeof(struct ep_counter_pair) * EP_MAX_SERVICES * EP_MAX_SERVERS,
		RTE_CACHE_LINE_SIZE, socket);
	w->stats_ip_counters = rte_zmalloc_socket("ep_stats_ip", sizeof(struct ep_counter_pair) * EP_MAX_STATS_IPS,
						  RTE_CACHE_LINE_SIZE, socket);
	if (!w->server_counters || !w->server_flows || !w->server_handshakes ||
	    !w->stats_ip_counters)
		return ep_fail(err, EP_ENOMEM, "counters for worker %u", index);
	if (ep_hold_init(&w->hold, ep_dp.cfg.hold_capacity_per_worker, socket) != 0)
		return ep_fail(err, EP_ENOMEM, "hold buffer of %u packets for worker %u", ep_dp.cfg.hold_capacity_per_worker,
			       index);
	snprintf(name, sizeof(name), "ep_cmd_%u", index);
	w->commands = rte_ring_create_elem(name, sizeof(struct ep_command), 1024, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!w->commands)
		return ep_fail(err, EP_ENOMEM, "command ring for worker %u", index);
	if (rte_rcu_qsbr_thread_register(ep_dp.qsbr, index) != 0)
		return ep_fail(err, EP_EEAL, "RCU registration of worker %u", index);
	return 0;
}

static int probe_ports(struct ep_error *err)
{
	uint16_t id;
	ep_dp.nports = 0;
	RTE_ETH_FOREACH_DEV(id)
	{
		if (id >= EP_MAX_PORTS)
			return ep_fail(err, EP_ENOPORT, "port %u: at most %d ports are supported", id, EP_MAX_PORTS);
		struct ep_port_rt *p = &ep_dp.ports[id];
		p->used = 1;
		rte_eth_macaddr_get(id, &p->mac);
		if (id + 1 > ep_dp.nports)
			ep_dp.nports = id + 1;
	}
	return 0;
}

int ep_create(const struct ep_config *cfg, struct ep_error *err)
{
	if (!ep_dp.eal_ready)
		return ep_fail(err, EP_ESTATE, "EAL not initialised");
	if (ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane already created");
	if (cfg->affinity_capacity < 1024 || cfg->flow_capacity_per_worker < 1024)
		return ep_fail(err, EP_EINVAL, "table capacities must be at least 1024");
	if (cfg->mbufs_per_worker < 2048)
		return ep_fail(err, EP_EINVAL, "mbufs per worker must be at least 2048");
	if (cfg->miss_policy > EP_MISS_ROUTE)
		return ep_fail(err, EP_EINVAL, "unknown miss policy %u", cfg->miss_policy);
	ep_dp.cfg = *cfg;
	if (ep_dp.cfg.hold_capacity_per_worker == 0)
		ep_dp.cfg.hold_capacity_per_worker = 1024;
	if (ep_dp.cfg.hold_capacity_per_worker > cfg->mbufs_per_worker / 2)
		return ep_fail(err, EP_EINVAL, "hold capacity %u above half the worker's %u mbufs",
			       ep_dp.cfg.hold_capacity_per_worker, cfg->mbufs_per_worker);
	if (ep_dp.cfg.hold_timeout_ms == 0)
		ep_dp.cfg.hold_timeout_ms = 2000;
	ep_dp.hold_timeout_tsc = (uint64_t)ep_dp.cfg.hold_timeout_ms * ep_dp.tsc_hz / 1000;
	for (int i = 0; i < EP_TO__COUNT; i++) {
		if (cfg->timeouts_s[i] == 0)
			return ep_fail(err, EP_EINVAL, "timeout %d is zero", i);
		ep_dp.timeout_tsc[i] = (uint64_t)cfg->timeouts_s[i] * ep_dp.tsc_hz;
	}

	unsigned lcore;
	ep_dp.nworkers = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (ep_dp.nworkers == EP_MAX_WORKERS)
			return ep_fail(err, EP_EINVAL, "more than %d worker lcores", EP_MAX_WORKERS);
		ep_dp.nworkers++;
	}
	if (ep_dp.nworkers == 0)
		return ep_fail(err, EP_EINVAL, "no worker lcores: give EAL at least two lcores");

	ep_dp.units = rte_zmalloc("ep_units", sizeof(struct ep_unit_table), RTE_CACHE_LINE_SIZE);
	ep_dp.flow_events = rte_ring_create_elem("ep_flow_events", sizeof(struct ep_flow_record), 1 << 16, SOCKET_ID_ANY,
						 RING_F_SC_DEQ);
	if (!ep_dp.units || !ep_dp.flow_events)
		return ep_fail(err, EP_ENOMEM, "work units and flow event ring");
	ep_dp.server_epochs =
		rte_zmalloc("ep_server_epochs", sizeof(uint16_t) * EP_MAX_SERVICES * EP_MAX_SERVERS, RTE_CACHE_LINE_SIZE);
	if (!ep_dp.server_epochs)
		return ep_fail(err, EP_ENOMEM, "server epochs");
	size_t qsz = rte_rcu_qsbr_get_memsize(ep_dp.nworkers);
	ep_dp.qsbr = rte_zmalloc("ep_qsbr", qsz, RTE_CACHE_LINE_SIZE);
	if (!ep_dp.qsbr || rte_rcu_qsbr_init(ep_dp.qsbr, ep_dp.nworkers) != 0)
		return ep_fail(err, EP_ENOMEM, "RCU state");

	uint32_t i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (create_worker(i++, lcore, err))
			return -1;
	}
	int rc = ep_affinity_table_create(&ep_dp.manager, cfg->affinity_capacity, ep_dp.nworkers);
	if (rc)
		return ep_fail(err, EP_ENOMEM, "affinity table of %u entries: %s", cfg->affinity_capacity,
			       rte_strerror(-rc));
	ep_dp.manager_extra = rte_zmalloc("ep_manager_extra", sizeof(struct ep_manager_extra) * ep_dp.manager.capacity,
					  RTE_CACHE_LINE_SIZE);
	if (!ep_dp.manager_extra)
		return ep_fail(err, EP_ENOMEM, "affinity interest criteria");

	struct rte_lpm_config lpm = { .max_rules = 4096, .number_tbl8s = 256 };
	ep_dp.lpm = rte_lpm_create("ep_routes", SOCKET_ID_ANY, &lpm);
	if (!ep_dp.lpm)
		return ep_fail(err, EP_ENOMEM, "route table: %s", rte_strerror(rte_errno));
	struct rte_lpm_rcu_config lpm_rcu = { .v = ep_dp.qsbr, .mode = RTE_LPM_QSBR_MODE_DQ };
	if (rte_lpm_rcu_qsbr_add(ep_dp.lpm, &lpm_rcu) != 0)
		return ep_fail(err, EP_EEAL, "route table RCU: %s", rte_strerror(rte_errno));
	struct rte_hash_parameters nh = {
		.name = "ep_neighbors",
		.entries = EP_MAX_NEIGHBORS,
		.key_len = sizeof(uint32_t),
		.socket_id = SOCKET_ID_ANY,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	ep_dp.neigh_hash = rte_hash_create(&nh);
	ep_dp.punt_ring = rte_ring_create("ep_punt", EP_PUNT_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	ep_dp.inject_ring = rte_ring_create("ep_inject", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	ep_dp.process_ring = rte_ring_create("ep_process", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	ep_dp.event_ring =
		rte_ring_create_elem("ep_events", sizeof(struct ep_event), EP_EVENT_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	ep_dp.ctrl_pool = rte_pktmbuf_pool_create("ep_ctrl_pool", 2047, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!ep_dp.neigh_hash || !ep_dp.punt_ring || !ep_dp.inject_ring || !ep_dp.process_ring || !ep_dp.event_ring ||
	    !ep_dp.ctrl_pool)
		return ep_fail(err, EP_ENOMEM, "control rings and pools: %s", rte_strerror(rte_errno));
	if (ep_v6_tables_create(err))
		return -1;
	ep_dp.wildcards = ep_wildcard_build(NULL, 0, err);
	if (!ep_dp.wildcards)
		return -1;
	if (probe_ports(err))
		return -1;
	ep_dp.created = 1;
	return 0;
}

/* ---- ports ---- */

uint16_t ep_port_count(void)
{
	return ep_dp.nports;
}

int ep_port_info(uint16_t port, struct ep_port_info *out, struct ep_error *err)
{
	if (port >= ep_dp.nports || !ep_dp.ports[port].used)
		return ep_fail(err, EP_ENOPORT, "port %u does not exist (%u ports)", port, ep_dp.nports);
	struct rte_eth_dev_info info;
	struct rte_eth_link link;
	memset(out, 0, sizeof(*out));
	if (rte_eth_dev_info_get(port, &info) != 0)
		return ep_fail(err, EP_ENOPORT, "port %u: no device info", port);
	rte_eth_dev_get_name_by_port(port, out->name);
	snprintf(out->driver, sizeof(out->driver), "%s", info.driver_name);
	memcpy(out->mac, ep_dp.ports[port].mac.addr_bytes, 6);
	out->rx_queues = info.nb_rx_queues;
	out->tx_queues = info.nb_tx_queues;
	out->rss = info.flow_type_rss_offloads != 0;
	if (rte_eth_link_get_nowait(port, &link) == 0) {
		out->link_up = link.link_status == RTE_ETH_LINK_UP;
		out->speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
	}
	return 0;
}

int ep_port_configure(uint16_t port, uint32_t addr, uint8_t prefix_len, int promiscuous, struct ep_error *err)
{
	if (port >= ep_dp.nports || !ep_dp.ports[port].used)
		return ep_fail(err, EP_ENOPORT, "port %u does not exist (%u ports)", port, ep_dp.nports);
	if (prefix_len > 32)
		return ep_fail(err, EP_EINVAL, "prefix length %u above 32", prefix_len);
	struct ep_port_rt *p = &ep_dp.ports[port];
	if (p->addr && p->addr != addr)
		ep_local_addr_del(port, p->addr, NULL);
	p->addr = addr;
	p->prefix_len = prefix_len;
	if (promiscuous)
		rte_eth_promiscuous_enable(port);
	else
		rte_eth_promiscuous_disable(port);
	if (addr) {
		if (ep_local_addr_add(port, addr, err))
			return -1;
		if (prefix_len > 0) {
			uint32_t mask = prefix_len == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix_len);
			if (ep_route_add(addr & rte_cpu_to_be_32(mask), prefix_len, port, 0, err))
				return -1;
		}
	}
	return 0;
}

int ep_port_own_mac_only(uint16_t port, int on, struct ep_error *err)
{
	if (port >= ep_dp.nports || !ep_dp.ports[port].used)
		return ep_fail(err, EP_ENOPORT, "port %u does not exist (%u ports)", port, ep_dp.nports);
	__atomic_store_n(&ep_dp.ports[port].own_mac_only, (uint8_t)(on != 0), __ATOMIC_RELAXED);
	return 0;
}

static int port_start(uint16_t port, struct ep_error *err)
{
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port, &info) != 0)
		return ep_fail(err, EP_ENOPORT, "port %u: no device info", port);
	uint16_t nq = (uint16_t)ep_dp.nworkers;
	if (info.max_rx_queues < nq || info.max_tx_queues < nq)
		return ep_fail(err, EP_ENOPORT,
			       "port %u (%s) has %u RX / %u TX queues, %u workers need one pair each (e.g. qpairs=%u)",
			       port, info.driver_name, info.max_rx_queues, info.max_tx_queues, nq, nq);
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint64_t rss = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
	if (nq > 1 && rss) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = rss;
	}
	int rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc)
		return ep_fail(err, EP_ENOPORT, "port %u configure: %s", port, rte_strerror(-rc));
	uint16_t rxd = 1024, txd = 1024;
	rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
	int port_socket = rte_eth_dev_socket_id(port);
	unsigned socket = port_socket < 0 ? (unsigned)SOCKET_ID_ANY : (unsigned)port_socket;
	for (uint16_t q = 0; q < nq; q++) {
		struct ep_worker *w = ep_dp.workers[q];
		rc = rte_eth_rx_queue_setup(port, q, rxd, socket, NULL, w->pool);
		if (rc)
			return ep_fail(err, EP_ENOPORT, "port %u RX queue %u: %s", port, q, rte_strerror(-rc));
		rc = rte_eth_tx_queue_setup(port, q, txd, socket, NULL);
		if (rc)
			return ep_fail(err, EP_ENOPORT, "port %u TX queue %u: %s", port, q, rte_strerror(-rc));
	}
	rc = rte_eth_dev_start(port);
	if (rc)
		return ep_fail(err, EP_ENOPORT, "port %u start: %s", port, rte_strerror(-rc));
	ep_dp.ports[port].started = 1;
	return 0;
}

int ep_start(struct ep_error *err)
{
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	if (ep_dp.running)
		return ep_fail(err, EP_ESTATE, "already running");
	for (uint16_t p = 0; p < ep_dp.nports; p++)
		if (ep_dp.ports[p].used && port_start(p, err))
			return -1;
	__atomic_store_n(&ep_dp.running, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
		int rc = rte_eal_remote_launch(ep_worker_main, ep_dp.workers[i], ep_dp.workers[i]->lcore);
		if (rc) {
			ep_stop(NULL);
			return ep_fail(err, EP_EEAL, "launching worker on lcore %u: %s", ep_dp.workers[i]->lcore,
				       rte_strerror(-rc));
		}
	}
	return 0;
}

int ep_stop(struct ep_error *err)
{
	if (!ep_dp.running)
		return ep_fail(err, EP_ESTATE, "not running");
	__atomic_store_n(&ep_dp.running, 0, __ATOMIC_RELEASE);
	rte_eal_mp_wait_lcore();
	for (uint16_t p = 0; p < ep_dp.nports; p++)
		if (ep_dp.ports[p].started) {
			rte_eth_dev_stop(p);
			ep_dp.ports[p].started = 0;
		}
	return 0;
}

void ep_shutdown(void)
{
	if (!ep_dp.eal_ready)
		return;
	if (ep_dp.running)
		ep_stop(NULL);
	if (ep_dp.created) {
		for (uint16_t p = 0; p < ep_dp.nports; p++)
			if (ep_dp.ports[p].used)
				rte_eth_dev_close(p);
		struct rte_mbuf *m;
		while (rte_ring_dequeue(ep_dp.punt_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		while (rte_ring_dequeue(ep_dp.inject_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		while (rte_ring_dequeue(ep_dp.process_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		for (uint32_t i = 0; i < EP_MAX_SERVICES; i++)
			ep_service_del(i, NULL);
		ep_wildcard_free(ep_dp.wildcards);
		ep_affinity_table_free(&ep_dp.manager);
		rte_free(ep_dp.manager_extra);
		for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
			struct ep_worker *w = ep_dp.workers[i];
			ep_flow_table_free(&w->learned);
			rte_free(w->server_counters);
			rte_free(w->server_flows);
			rte_free(w->server_handshakes);
			rte_free(w->stats_ip_counters);
			ep_hold_free(&w->hold);
			rte_ring_free(w->commands);
			rte_mempool_free(w->pool);
			rte_free(w);
		}
		rte_lpm_free(ep_dp.lpm);
		rte_hash_free(ep_dp.neigh_hash);
		ep_v6_tables_free();
		rte_ring_free(ep_dp.punt_ring);
		rte_ring_free(ep_dp.inject_ring);
		rte_ring_free(ep_dp.process_ring);
		rte_ring_free(ep_dp.event_ring);
		rte_mempool_free(ep_dp.ctrl_pool);
		rte_free(ep_dp.qsbr);
		rte_free(ep_dp.server_epochs);
		rte_free(ep_dp.units);
		rte_ring_free(ep_dp.flow_events);
	}
	rte_eal_cleanup();
	memset(&ep_dp, 0, sizeof(ep_dp));
}

/* ---- manager affinities ---- */

static int check_action(const struct ep_action *a, struct ep_error *err)
{
	if (a->type != EP_ACT_FORWARD && a->type != EP_ACT_DROP && a->type != EP_ACT_PUNT)
		return ep_fail(err, EP_EINVAL, "action type %u is not forward, drop or punt", a->type);
	if (a->dispatch > EP_DISPATCH_GUE)
		return ep_fail(err, EP_EINVAL, "dispatch mode %u unknown", a->dispatch);
	if (a->dispatch && a->forward_ip == 0)
		return ep_fail(err, EP_EINVAL, "dispatch needs a forward IP");
	if (a->dispatch == EP_DISPATCH_GUE && a->gue_port == 0)
		return ep_fail(err, EP_EINVAL, "GUE dispatch needs a destination port");
	if (((a->flags & EP_ACT_F_DSCP) && a->qos_dscp > 63) || ((a->flags & EP_ACT_F_PCP) && a->qos_pcp > 7) ||
	    ((a->flags & EP_ACT_F_MPLS_PUSH) && a->qos_mpls_label > 0xfffff))
		return ep_fail(err, EP_EINVAL, "QoS value out of range (DSCP 0-63, PCP 0-7, MPLS label 20 bits)");
	if (a->out_port != EP_PORT_ROUTE && (a->out_port >= ep_dp.nports || !ep_dp.ports[a->out_port].used))
		return ep_fail(err, EP_ENOPORT, "output port %u does not exist (%u ports)", a->out_port, ep_dp.nports);
	if ((a->flags & EP_ACT_F_NEXT_HOP) && a->out_port == EP_PORT_ROUTE)
		return ep_fail(err, EP_EINVAL, "a next-hop MAC needs an output port");
	return 0;
}

int ep_affinity_add(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s, struct ep_error *err)
{
	return ep_affinity_add_seq(key, act, ttl_s, NULL, err);
}

int ep_affinity_add_seq(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s,
			const struct ep_seq_adjust *seq, struct ep_error *err)
{
	struct ep_affinity_options opts = { .seq = seq };
	return ep_affinity_add_opts(key, act, ttl_s, &opts, err);
}

/* The counter slot of a forward IP, created on first use (slots are never reused: counters outlive
 * affinities). Returns -1 when all are taken. */
static int stats_slot(uint32_t ip)
{
	for (uint32_t i = 0; i < ep_dp.nstats_ips; i++)
		if (ep_dp.stats_ips[i] == ip)
			return (int)i;
	if (ep_dp.nstats_ips == EP_MAX_STATS_IPS)
		return -1;
	ep_dp.stats_ips[ep_dp.nstats_ips] = ip;
	return (int)ep_dp.nstats_ips++;
}

int ep_affinity_add_opts(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s,
			 const struct ep_affinity_options *opts, struct ep_error *err)
{
	static const struct ep_affinity_options no_opts;
	if (!opts)
		opts = &no_opts;
	const struct ep_seq_adjust *seq = opts->seq;
	static const struct ep_interest no_interest;
	const struct ep_interest *interest = opts->interest ? opts->interest : &no_interest;
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	if (key->family != 4 && key->family != 6)
		return ep_fail(err, EP_EINVAL, "key family %u is not 4 or 6", key->family);
	if (key->pad[0] || key->pad[1])
		return ep_fail(err, EP_EINVAL, "key padding must be zero");
	if (ttl_s == 0)
		return ep_fail(err, EP_EINVAL, "ttl 0 means delete: use ep_affinity_del");
	if (check_action(act, err))
		return -1;
	if (seq && key->proto != IPPROTO_TCP)
		return ep_fail(err, EP_EINVAL, "a sequence adjustment needs a TCP key");
	if (interest->hold)
		return ep_fail(err, EP_EINVAL, "the hold flag waits for a fixed affinity: wildcards only");
	static const uint8_t unchanged6[16];
	const uint8_t *nat6_src = opts->nat6_src ? opts->nat6_src : unchanged6;
	const uint8_t *nat6_dst = opts->nat6_dst ? opts->nat6_dst : unchanged6;
	int nat6 = !ep_addr6_is_zero(nat6_src) || !ep_addr6_is_zero(nat6_dst);
	if (key->family == 6 && (act->nat_src_ip | act->nat_dst_ip))
		return ep_fail(err, EP_EINVAL, "an IPv6 key's NAT addresses must be IPv6 (nat6_src/nat6_dst)");
	if (key->family != 6 && nat6)
		return ep_fail(err, EP_EINVAL, "IPv6 NAT addresses need an IPv6 key");
	if (key->family == 6 && act->dispatch != EP_DISPATCH_NONE)
		return ep_fail(err, EP_EINVAL, "dispatch to an IPv4 forward IP is not available for an IPv6 key");
	nat6 = nat6 || (key->family == 6 && (act->nat_src_port | act->nat_dst_port));
	struct ep_manager_extra extra = { .interest = *interest };
	if (opts->stats_ip) {
		int slot = stats_slot(opts->stats_ip);
		if (slot < 0)
			return ep_fail(err, EP_EFULL, "per-forward-IP counters full (%d addresses)", EP_MAX_STATS_IPS);
		extra.stats_slot = (uint16_t)slot;
	}
	struct ep_action prepared = *act;
	prepared.flags2 = (uint16_t)((seq ? EP_ACT_F2_SEQ_ADJUST : 0) | (interest->mask ? EP_ACT_F2_INTEREST : 0) |
				     (opts->stats_ip ? EP_ACT_F2_STATS_IP : 0) | (nat6 ? EP_ACT_F2_NAT6 : 0));
	ep_action_prepare(&prepared, key);
	act = &prepared;
	static const struct ep_seq_adjust no_seq;
	if (!seq)
		seq = &no_seq;
	struct ep_affinity_table *t = &ep_dp.manager;
	uint64_t expire = rte_rdtsc() + (uint64_t)ttl_s * ep_dp.tsc_hz;
	int32_t pos = ep_affinity_table_find(t, key);
	struct ep_flow *f = pos >= 0 ? ep_affinity_flow(t, (uint32_t)pos) : NULL;
	if (f && memcmp(&f->act, act, sizeof(*act)) == 0 && memcmp(&f->seq, seq, sizeof(*seq)) == 0 &&
	    memcmp(f->nat6_src, nat6_src, 16) == 0 && memcmp(f->nat6_dst, nat6_dst, 16) == 0 &&
	    memcmp(&ep_dp.manager_extra[pos].interest, interest, sizeof(*interest)) == 0 &&
	    ep_dp.manager_extra[pos].stats_slot == extra.stats_slot) {
		/* refresh: only the expiry moves, which workers read as one aligned word */
		__atomic_store_n(&f->expire_tsc, expire, __ATOMIC_RELEASE);
		f->ttl_s = ttl_s;
		return 0;
	}
	if (pos >= 0)
		ep_affinity_table_del(t, key); /* a changed action gets a fresh slot; never rewrite one in use */
	pos = ep_affinity_table_put(t, key);
	if (pos == -EEXIST)
		return ep_fail(err, EP_EFULL, "an installed affinity's key has this key's digest (see affinity_table.c)");
	if (pos < 0)
		return ep_fail(err, EP_EFULL, "affinity table full (%u entries)", t->capacity);
	f = ep_affinity_flow(t, (uint32_t)pos);
	f->in_use = 0;
	t->live++;
	f->act = *act;
	f->seq = *seq;
	memcpy(f->nat6_src, nat6_src, 16);
	memcpy(f->nat6_dst, nat6_dst, 16);
	f->key = *key;
	f->ttl_s = ttl_s;
	f->expire_tsc = expire;
	f->tcp_state = EP_TCPS_NONE;
	f->neigh_gen = 0;
	f->has_server = 0;
	f->reverse = 0;
	ep_dp.manager_extra[pos] = extra;
	memset(ep_affinity_counters(t, (uint32_t)pos), 0, sizeof(struct ep_counter_pair) * ep_dp.nworkers);
	__atomic_store_n(&f->in_use, 1, __ATOMIC_RELEASE);
	/* packets held for this flow are released by their worker's next loop */
	__atomic_fetch_add(&ep_dp.manager_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int ep_affinity_del(const struct ep_flow_key *key)
{
	if (!ep_dp.created)
		return 0;
	return ep_affinity_table_del(&ep_dp.manager, key);
}

uint32_t ep_affinity_count(void)
{
	return ep_dp.created ? ep_dp.manager.live : 0;
}

uint32_t ep_learned_count(void)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < ep_dp.nworkers; i++)
		n += __atomic_load_n(&ep_dp.workers[i]->learned.live, __ATOMIC_RELAXED);
	return n;
}

static uint32_t seconds_left(uint64_t expire, uint64_t now)
{
	return expire > now ? (uint32_t)((expire - now + ep_dp.tsc_hz - 1) / ep_dp.tsc_hz) : 0;
}

static void describe_flow(struct ep_affinity_info *o, const struct ep_flow *f, uint8_t origin, uint64_t now)
{
	o->key = f->key;
	o->action = f->act;
	ep_action_public(&o->action);
	o->ttl_s = seconds_left(f->expire_tsc, now);
	static const struct ep_seq_adjust no_seq;
	o->seq = (f->act.flags2 & EP_ACT_F2_SEQ_ADJUST) ? f->seq : no_seq; /* learned IPv6 flows share its space */
	o->origin = origin;
	o->tcp_state = f->tcp_state;
	o->interest = (struct ep_interest){ 0 };
	o->stats_ip = 0;
	int nat6 = f->key.family == 6 && (f->has_server || (f->act.flags2 & EP_ACT_F2_NAT6));
	memcpy(o->nat6_src, nat6 ? f->nat6_src : (const uint8_t[16]){ 0 }, 16);
	memcpy(o->nat6_dst, nat6 ? f->nat6_dst : (const uint8_t[16]){ 0 }, 16);
	o->packets = f->packets;
	o->bytes = f->bytes;
}

uint32_t ep_affinity_list(struct ep_affinity_info *out, uint32_t max, int include_learned)
{
	uint32_t n = 0;
	uint64_t now = rte_rdtsc();
	if (!ep_dp.created)
		return 0;
	for (uint32_t pos = 0; pos < ep_dp.manager.capacity && n < max; pos++) {
		const struct ep_flow *f = ep_affinity_flow(&ep_dp.manager, pos);
		if (!f->in_use)
			continue;
		struct ep_affinity_info *o = &out[n++];
		describe_flow(o, f, EP_ORIGIN_MANAGER, now);
		if (f->act.flags2 & EP_ACT_F2_INTEREST)
			o->interest = ep_dp.manager_extra[pos].interest;
		if (f->act.flags2 & EP_ACT_F2_STATS_IP)
			o->stats_ip = ep_dp.stats_ips[ep_dp.manager_extra[pos].stats_slot];
		o->packets = o->bytes = 0; /* manager affinities count per worker */
		const struct ep_counter_pair *counters = ep_affinity_counters(&ep_dp.manager, pos);
		for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
			o->packets += counters[i].packets;
			o->bytes += counters[i].bytes;
		}
	}
	for (uint32_t i = 0; include_learned && i < ep_dp.nworkers; i++) {
		const struct ep_flow_table *t = &ep_dp.workers[i]->learned;
		for (uint32_t pos = 0; pos < t->capacity && n < max; pos++)
			if (t->flows[pos].in_use)
				describe_flow(&out[n++], &t->flows[pos], EP_ORIGIN_LEARNED, now);
	}
	return n;
}

/* Expires manager affinities a slice at a time (the whole table within ~1 s of polls). */
static void expire_manager(uint32_t budget)
{
	static uint32_t cursor;
	struct ep_affinity_table *t = &ep_dp.manager;
	uint64_t now = rte_rdtsc();
	for (uint32_t k = 0; k < budget; k++) {
		struct ep_flow *f = ep_affinity_flow(t, cursor);
		if (++cursor >= t->capacity)
			cursor = 0;
		if (f->in_use && f->expire_tsc < now) {
			struct ep_flow_key key = f->key;
			if (ep_affinity_table_del(t, &key))
				ep_dp.ctrl.flows_expired++;
		}
	}
}

int ep_wildcards_commit(const struct ep_wildcard *rules, uint32_t n, struct ep_error *err)
{
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	struct ep_wildcard_set *set = ep_wildcard_build(rules, n, err);
	if (!set)
		return -1;
	struct ep_wildcard_set *old = __atomic_exchange_n(&ep_dp.wildcards, set, __ATOMIC_ACQ_REL);
	ep_rcu_wait();
	ep_wildcard_free(old);
	return 0;
}

int ep_flow_forget(const struct ep_flow_key *key, struct ep_error *err)
{
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	struct ep_command cmd = { .op = EP_CMD_FORGET_FLOW, .record.key = *key };
	for (uint32_t i = 0; i < ep_dp.nworkers; i++)
		if (rte_ring_sp_enqueue_elem(ep_dp.workers[i]->commands, &cmd, sizeof(cmd)) != 0)
			return ep_fail(err, EP_EFULL, "worker %u command queue full", i);
	return 0;
}

/* ---- cluster hooks ---- */

uint16_t ep_work_unit(uint32_t client_ip, uint16_t client_port)
{
	return ep_unit_of(client_ip, client_port);
}

uint16_t ep_work_unit6(const uint8_t client_ip6[16], uint16_t client_port)
{
	return ep_unit_of(ep_addr6_fold(client_ip6), client_port);
}

int ep_work_units_set(const uint8_t *states, const struct ep_unit_forwarding *forwarding, struct ep_error *err)
{
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	int forwards = 0;
	for (uint32_t u = 0; u < EP_WORK_UNITS; u++) {
		if (states[u] > EP_UNIT_FORWARD)
			return ep_fail(err, EP_EINVAL, "work unit %u: state %u is not owned, foreign, hold or forward", u,
				       states[u]);
		if (states[u] != EP_UNIT_FORWARD)
			continue;
		if (!forwarding)
			return ep_fail(err, EP_EINVAL, "work unit %u is forwarded but no owner MACs were given", u);
		if (forwarding->peer[u] >= EP_MAX_UNIT_PEERS)
			return ep_fail(err, EP_EINVAL, "work unit %u: owner %u beyond %d", u, forwarding->peer[u],
				       EP_MAX_UNIT_PEERS);
		forwards = 1;
	}
	struct ep_unit_table *next = rte_zmalloc("ep_units", sizeof(*next), RTE_CACHE_LINE_SIZE);
	if (!next)
		return ep_fail(err, EP_ENOMEM, "work unit table");
	memcpy(next->state, states, EP_WORK_UNITS);
	next->forwarding = (uint8_t)forwards;
	if (forwarding)
		next->fwd = *forwarding;
	struct ep_unit_table *old = __atomic_exchange_n(&ep_dp.units, next, __ATOMIC_ACQ_REL);
	ep_rcu_wait();
	rte_free(old);
	return 0;
}

void ep_unit_loads(struct ep_unit_load *out)
{
	memset(out, 0, sizeof(*out) * EP_WORK_UNITS);
	for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
		const struct ep_worker *w = ep_dp.workers[i];
		for (uint32_t u = 0; u < EP_WORK_UNITS; u++) {
			out[u].packets += w->unit_packets[u];
			out[u].flows += (uint64_t)w->unit_flows[u];
		}
	}
}

void ep_replication_enable(int on)
{
	__atomic_store_n(&ep_dp.replicating, on ? 1 : 0, __ATOMIC_RELEASE);
}

uint32_t ep_flow_events(struct ep_flow_record *out, uint32_t max)
{
	if (!ep_dp.created)
		return 0;
	return rte_ring_sc_dequeue_burst_elem(ep_dp.flow_events, out, sizeof(*out), max, NULL);
}

uint64_t ep_flow_events_lost(void)
{
	return __atomic_load_n(&ep_dp.flow_events_lost, __ATOMIC_RELAXED);
}

uint32_t ep_flow_import(const struct ep_flow_record *records, uint32_t n)
{
	if (!ep_dp.created)
		return 0;
	uint32_t queued = 0;
	for (; queued < n; queued++) {
		struct ep_command cmd = { .op = EP_CMD_IMPORT_FLOW, .record = records[queued] };
		/* the flow goes to worker 0; a peer worker that sees its packets adopts it from there */
		if (rte_ring_sp_enqueue_elem(ep_dp.workers[0]->commands, &cmd, sizeof(cmd)) != 0)
			break;
	}
	return queued;
}

/* ---- counters ---- */

uint32_t ep_worker_count(void)
{
	return ep_dp.nworkers;
}

uint32_t ep_worker_lcore(uint32_t i)
{
	return i < ep_dp.nworkers ? ep_dp.workers[i]->lcore : UINT32_MAX;
}

void ep_worker_counters(uint32_t i, struct ep_lcore_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= ep_dp.nworkers)
		return;
	*out = ep_dp.workers[i]->c;
	for (int p = 0; p < EP_MAX_PORTS; p++) {
		out->rx_bytes += out->port_rx_bytes[p];
		out->tx_pkts += out->port_tx_pkts[p];
		out->tx_bytes += out->port_tx_bytes[p];
	}
}

void ep_counters_total(struct ep_lcore_counters *out)
{
	*out = ep_dp.ctrl;
	uint64_t *sum = (uint64_t *)out;
	for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
		struct ep_lcore_counters c;
		ep_worker_counters(i, &c);
		const uint64_t *add = (const uint64_t *)&c;
		for (size_t k = 0; k < sizeof(c) / sizeof(uint64_t); k++)
			sum[k] += add[k];
	}
}

int ep_port_counters(uint16_t port, struct ep_port_counters *out)
{
	struct rte_eth_stats s;
	memset(out, 0, sizeof(*out));
	if (port >= ep_dp.nports || rte_eth_stats_get(port, &s) != 0)
		return -1;
	out->rx_pkts = s.ipackets;
	out->rx_bytes = s.ibytes;
	out->tx_pkts = s.opackets;
	out->tx_bytes = s.obytes;
	out->rx_missed = s.imissed;
	out->rx_errors = s.ierrors;
	out->tx_errors = s.oerrors;
	return 0;
}

uint32_t ep_server_counters(struct ep_server_counters *out, uint32_t max)
{
	uint32_t n = 0;
	for (uint32_t id = 0; id < EP_MAX_SERVICES; id++) {
		const struct ep_service_rt *svc = ep_dp.services[id];
		for (uint32_t s = 0; svc && s < svc->nslots && n < max; s++) {
			if (!svc->servers[s].present)
				continue;
			struct ep_server_counters *o = &out[n++];
			memset(o, 0, sizeof(*o));
			o->service_id = id;
			o->ip = svc->servers[s].srv.ip;
			memcpy(o->ip6, svc->servers[s].srv.ip6, 16);
			o->port = svc->servers[s].srv.port;
			o->weight = svc->servers[s].srv.weight;
			for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
				const struct ep_worker *w = ep_dp.workers[i];
				uint32_t at = id * EP_MAX_SERVERS + s;
				o->flows += w->server_flows[at];
				o->packets += w->server_counters[at].packets;
				o->bytes += w->server_counters[at].bytes;
				o->handshakes += w->server_handshakes[at].packets;
				o->handshake_us_total += w->server_handshakes[at].bytes;
			}
		}
	}
	return n;
}

uint64_t ep_injected_count(void)
{
	return ep_dp.injected;
}

uint32_t ep_forward_ip_counters(struct ep_forward_ip_counters *out, uint32_t max)
{
	uint32_t n = 0;
	for (uint32_t slot = 0; slot < ep_dp.nstats_ips && n < max; slot++) {
		struct ep_forward_ip_counters *o = &out[n++];
		*o = (struct ep_forward_ip_counters){ .ip = ep_dp.stats_ips[slot] };
		for (uint32_t i = 0; i < ep_dp.nworkers; i++) {
			o->packets += ep_dp.workers[i]->stats_ip_counters[slot].packets;
			o->bytes += ep_dp.workers[i]->stats_ip_counters[slot].bytes;
		}
	}
	return n;
}

/* ---- punt / inject ---- */

int ep_queue_tx(struct rte_mbuf *m, uint16_t port)
{
	m->port = port;
	if (rte_ring_sp_enqueue(ep_dp.inject_ring, m) != 0) {
		rte_pktmbuf_free(m);
		return -1;
	}
	return 0;
}

uint32_t ep_poll(struct ep_punted *out, uint32_t max)
{
	if (!ep_dp.created)
		return 0;
	ep_handle_events();
	expire_manager(4096);
	uint32_t n = 0;
	struct rte_mbuf *m;
	while (n < max && rte_ring_sc_dequeue(ep_dp.punt_ring, (void **)&m) == 0) {
		struct ep_punted *p = &out[n++];
		p->port = m->port;
		/* the worker's punt() packed these into the (no longer needed) RSS/FDIR hash words */
		p->reason = (uint8_t)(m->hash.fdir.lo >> 24);
		p->interest_flags = (uint8_t)(m->hash.fdir.lo >> 16);
		uint16_t low = (uint16_t)(m->hash.fdir.lo & 0xffff);
		p->unit = p->reason == EP_PUNT_HELD ? low : 0;
		p->interest_reasons = p->reason == EP_PUNT_INTEREST ? low : 0;
		p->wildcard_id = m->hash.fdir.hi;
		p->len = m->pkt_len;
		uint32_t copy = p->len < p->cap ? p->len : p->cap;
		const void *data = rte_pktmbuf_read(m, 0, copy, p->data);
		if (data && data != p->data)
			memcpy(p->data, data, copy);
		rte_pktmbuf_free(m);
	}
	return n;
}

static int queue_for_processing(struct rte_mbuf *m, struct ep_error *err);

static int control_frame(uint16_t port, const uint8_t *frame, uint32_t len, struct rte_mbuf **out, struct ep_error *err)
{
	if (!ep_dp.running)
		return ep_fail(err, EP_ESTATE, "data plane is not running");
	if (port >= ep_dp.nports || !ep_dp.ports[port].started)
		return ep_fail(err, EP_ENOPORT, "port %u is not running", port);
	if (len < RTE_ETHER_HDR_LEN || len > RTE_MBUF_DEFAULT_DATAROOM)
		return ep_fail(err, EP_EINVAL, "frame of %u bytes (need %d..%d)", len, RTE_ETHER_HDR_LEN,
			       RTE_MBUF_DEFAULT_DATAROOM);
	struct rte_mbuf *m = rte_pktmbuf_alloc(ep_dp.ctrl_pool);
	if (!m)
		return ep_fail(err, EP_ENOMEM, "no control mbuf free");
	memcpy(rte_pktmbuf_mtod(m, void *), frame, len);
	m->data_len = m->pkt_len = len;
	m->port = port;
	m->hash.fdir.lo = m->hash.fdir.hi = 0; /* not a resumed cascade (see ep_inject_process_after) */
	*out = m;
	return 0;
}

int ep_inject(uint16_t port, const uint8_t *frame, uint32_t len, struct ep_error *err)
{
	struct rte_mbuf *m = NULL;
	if (control_frame(port, frame, len, &m, err))
		return -1;
	if (ep_queue_tx(m, port) != 0)
		return ep_fail(err, EP_EFULL, "inject queue full");
	ep_dp.injected++;
	return 0;
}

int ep_inject_process(uint16_t port, const uint8_t *frame, uint32_t len, struct ep_error *err)
{
	struct rte_mbuf *m = NULL;
	if (control_frame(port, frame, len, &m, err))
		return -1;
	return queue_for_processing(m, err);
}

int ep_inject_process_after(uint16_t port, const uint8_t *frame, uint32_t len, uint32_t wildcard_id,
			    struct ep_error *err)
{
	if (len >= RTE_ETHER_HDR_LEN && (frame[12] << 8 | frame[13]) != RTE_ETHER_TYPE_IPV4)
		return ep_fail(err, EP_EINVAL, "only IPv4 packets cascade (ethertype 0x%04x)", frame[12] << 8 | frame[13]);
	struct rte_mbuf *m = NULL;
	if (control_frame(port, frame, len, &m, err))
		return -1;
	m->hash.fdir.lo = EP_INJECT_RESUME;
	m->hash.fdir.hi = wildcard_id;
	return queue_for_processing(m, err);
}

static int queue_for_processing(struct rte_mbuf *m, struct ep_error *err)
{
	if (rte_ring_sp_enqueue(ep_dp.process_ring, m) != 0) {
		rte_pktmbuf_free(m);
		return ep_fail(err, EP_EFULL, "process queue full");
	}
	ep_dp.injected++;
	return 0;
}
