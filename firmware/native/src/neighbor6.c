/* IPv6 routes (rte_lpm6), neighbours (rte_hash, lock-free readers), local addresses and
 * neighbour solicitations: the IPv6 side of neighbor.c, with the same rules (control thread
 * writes, workers read and report through the event ring). */
#include <string.h>

#include <rte_lpm6.h>
#include <rte_malloc.h>
#include <rte_version.h>

#include "dp.h"
#include "packet6.h"

/* DPDK 24.11 types IPv6 addresses in the LPM API; 22.11 takes bytes. */
#if RTE_VERSION >= RTE_VERSION_NUM(24, 11, 0, 0)
#define LPM6_ADDR(p) ((const struct rte_ipv6_addr *)(const void *)(p))
#else
#define LPM6_ADDR(p) (p)
#endif

/* rte_lpm6's first level alone takes 64 MiB: made with the first IPv6 route, so units without
 * IPv6 do not pay for it. Never freed before shutdown, so workers may read it without RCU. */
static int lpm6_ensure(struct ep_error *err)
{
	if (ep_dp.lpm6)
		return 0;
	struct rte_lpm6_config cfg = { .max_rules = 4096, .number_tbl8s = 1 << 10 };
	struct rte_lpm6 *lpm6 = rte_lpm6_create("ep_routes6", SOCKET_ID_ANY, &cfg);
	if (!lpm6)
		return ep_fail(err, EP_ENOMEM, "IPv6 route table (rte_lpm6 needs about 70 MiB of DPDK memory): %s", rte_strerror(rte_errno));
	__atomic_store_n(&ep_dp.lpm6, lpm6, __ATOMIC_RELEASE);
	return 0;
}

int ep_v6_tables_create(struct ep_error *err)
{
	struct rte_hash_parameters nh = {
		.name = "ep_neighbors6",
		.entries = EP_MAX_NEIGHBORS,
		.key_len = 16,
		.socket_id = SOCKET_ID_ANY,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	ep_dp.neigh6_hash = rte_hash_create(&nh);
	if (!ep_dp.neigh6_hash)
		return ep_fail(err, EP_ENOMEM, "IPv6 neighbour table: %s", rte_strerror(rte_errno));
	return 0;
}

void ep_v6_tables_free(void)
{
	rte_lpm6_free(ep_dp.lpm6);
	rte_hash_free(ep_dp.neigh6_hash);
	ep_dp.lpm6 = NULL;
	ep_dp.neigh6_hash = NULL;
}

int ep_route6_lookup(const uint8_t dst[16], uint16_t *port, uint8_t next_hop[16])
{
	uint32_t idx;
	const struct rte_lpm6 *lpm6 = __atomic_load_n(&ep_dp.lpm6, __ATOMIC_ACQUIRE);
	if (!lpm6 || rte_lpm6_lookup(lpm6, LPM6_ADDR(dst), &idx) != 0)
		return -1;
	const struct ep_route6_nh *nh = &ep_dp.routes6[idx];
	*port = nh->port;
	memcpy(next_hop, ep_addr6_is_zero(nh->gateway) ? dst : nh->gateway, 16);
	return 0;
}

int ep_neighbor6_lookup(const uint8_t ip[16], struct ep_neighbor *out)
{
	int32_t pos = rte_hash_lookup(ep_dp.neigh6_hash, ip);
	if (pos < 0)
		return -1;
	*out = ep_dp.neighbors6[pos];
	return 0;
}

const struct ep_local_addr6 *ep_local6_find(const uint8_t ip[16], uint16_t port)
{
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++) {
		const struct ep_local_addr6 *l = &ep_dp.local6[i];
		if (__atomic_load_n(&l->used, __ATOMIC_ACQUIRE) && l->port == port && memcmp(l->ip, ip, 16) == 0)
			return l;
	}
	return NULL;
}

int ep_local6_lookup(const uint8_t ip[16], uint16_t port)
{
	return ep_local6_find(ip, port) != NULL;
}

static int check_port(uint16_t port, struct ep_error *err)
{
	if (port >= ep_dp.nports || !ep_dp.ports[port].used)
		return ep_fail(err, EP_ENOPORT, "port %u does not exist (%u ports)", port, ep_dp.nports);
	return 0;
}

static int check_created(struct ep_error *err)
{
	return ep_dp.created ? 0 : ep_fail(err, EP_ESTATE, "data plane not created");
}

int ep_local_addr6_add(uint16_t port, const uint8_t ip[16], struct ep_error *err)
{
	if (check_created(err) || check_port(port, err))
		return -1;
	if (ep_addr6_is_zero(ip) || ip[0] == 0xff)
		return ep_fail(err, EP_EINVAL, "local IPv6 address must be a unicast address other than ::");
	if (ep_local6_lookup(ip, port))
		return 0;
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++) {
		struct ep_local_addr6 *l = &ep_dp.local6[i];
		if (l->used)
			continue;
		memcpy(l->ip, ip, 16);
		l->port = port;
		l->ndp_answer = EP_ARP_PORT_MAC;
		__atomic_store_n(&l->used, 1, __ATOMIC_RELEASE);
		return 0;
	}
	return ep_fail(err, EP_EFULL, "more than %d local IPv6 addresses", EP_MAX_LOCAL_ADDRS);
}

int ep_local_addr6_ndp(uint16_t port, const uint8_t ip[16], enum ep_arp_answer answer, const uint8_t mac[6],
		       struct ep_error *err)
{
	if (check_created(err) || check_port(port, err))
		return -1;
	if (answer > EP_ARP_SILENT)
		return ep_fail(err, EP_EINVAL, "neighbour answer %d is not port MAC, shared MAC or silent", (int)answer);
	if (answer == EP_ARP_SHARED_MAC && !mac)
		return ep_fail(err, EP_EINVAL, "a shared-MAC neighbour answer needs the MAC");
	struct ep_local_addr6 *l = (struct ep_local_addr6 *)ep_local6_find(ip, port);
	if (!l)
		return ep_fail(err, EP_ENOENT, "local IPv6 address not configured on port %u", port);
	if (answer == EP_ARP_SHARED_MAC)
		memcpy(l->ndp_mac, mac, 6);
	__atomic_store_n(&l->ndp_answer, (uint8_t)answer, __ATOMIC_RELEASE);
	return 0;
}

int ep_local_addr6_del(uint16_t port, const uint8_t ip[16], struct ep_error *err)
{
	for (uint32_t i = 0; i < EP_MAX_LOCAL_ADDRS; i++) {
		struct ep_local_addr6 *l = &ep_dp.local6[i];
		if (l->used && l->port == port && memcmp(l->ip, ip, 16) == 0) {
			__atomic_store_n(&l->used, 0, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return ep_fail(err, EP_ENOENT, "local IPv6 address not configured on port %u", port);
}

static void masked(const uint8_t in[16], uint8_t len, uint8_t out[16])
{
	for (int i = 0; i < 16; i++) {
		int bits = len > i * 8 ? len - i * 8 : 0;
		out[i] = bits >= 8 ? in[i] : (uint8_t)(in[i] & (0xff00 >> bits));
	}
}

int ep_route6_add(const uint8_t prefix[16], uint8_t len, uint16_t port, const uint8_t gateway[16], struct ep_error *err)
{
	if (check_created(err) || check_port(port, err))
		return -1;
	if (len > 128)
		return ep_fail(err, EP_EINVAL, "IPv6 prefix length %u above 128", len);
	if (lpm6_ensure(err))
		return -1;
	uint32_t idx = ep_dp.nroutes6;
	for (uint32_t i = 0; i < ep_dp.nroutes6; i++)
		if (ep_dp.routes6[i].port == port && memcmp(ep_dp.routes6[i].gateway, gateway, 16) == 0)
			idx = i;
	if (idx == EP_MAX_ROUTES6)
		return ep_fail(err, EP_EFULL, "more than %d distinct IPv6 next hops", EP_MAX_ROUTES6);
	ep_dp.routes6[idx].port = port;
	memcpy(ep_dp.routes6[idx].gateway, gateway, 16);
	if (idx == ep_dp.nroutes6)
		ep_dp.nroutes6++;
	uint8_t net[16];
	masked(prefix, len, net);
	int rc = rte_lpm6_add(ep_dp.lpm6, LPM6_ADDR(net), len, idx);
	if (rc)
		return ep_fail(err, EP_EFULL, "IPv6 route table: %s", rte_strerror(-rc));
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int ep_route6_del(const uint8_t prefix[16], uint8_t len, struct ep_error *err)
{
	if (check_created(err))
		return -1;
	uint8_t net[16];
	masked(prefix, len > 128 ? 128 : len, net);
	if (len > 128 || !ep_dp.lpm6 || rte_lpm6_delete(ep_dp.lpm6, LPM6_ADDR(net), len) != 0)
		return ep_fail(err, EP_ENOENT, "no such IPv6 route");
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int ep_neighbor6_set(const uint8_t ip[16], uint16_t port, const uint8_t mac[6], struct ep_error *err)
{
	if (check_created(err) || check_port(port, err))
		return -1;
	int32_t pos = rte_hash_add_key(ep_dp.neigh6_hash, ip);
	if (pos < 0)
		return ep_fail(err, EP_EFULL, "IPv6 neighbour table full (%d)", EP_MAX_NEIGHBORS);
	struct ep_neighbor *n = &ep_dp.neighbors6[pos];
	if (n->port == port && memcmp(n->mac, mac, 6) == 0)
		return 0;
	memcpy(n->mac, mac, 6);
	n->port = port;
	__atomic_fetch_add(&ep_dp.neigh_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

static void send_solicit(uint16_t port, const uint8_t target[16])
{
	const struct ep_port_rt *p = &ep_dp.ports[port];
	if (!p->started || ep_addr6_is_zero(p->addr6))
		return;
	struct rte_mbuf *m = rte_pktmbuf_alloc(ep_dp.ctrl_pool);
	if (!m)
		return;
	uint32_t len = ep_ndp_solicit(rte_pktmbuf_mtod(m, uint8_t *), p->mac.addr_bytes, p->addr6, target);
	m->data_len = m->pkt_len = len;
	ep_queue_tx(m, port);
}

int ep_resolve6(const uint8_t ip[16], struct ep_error *err)
{
	if (check_created(err))
		return -1;
	uint16_t port;
	uint8_t next_hop[16];
	if (ep_route6_lookup(ip, &port, next_hop))
		return ep_fail(err, EP_EINVAL, "no route to the IPv6 address");
	if (!ep_dp.running)
		return ep_fail(err, EP_ESTATE, "data plane is not running");
	send_solicit(port, next_hop);
	return 0;
}

void ep_handle_event6(const struct ep_event *ev)
{
	struct ep_error err;
	if (ev->type == EP_EV_NEIGH6_LEARN)
		ep_neighbor6_set(ev->ip6, ev->port, ev->mac, &err);
	else if (ev->type == EP_EV_NEIGH6_MISS)
		send_solicit(ev->port, ev->ip6);
}

int ep_port_configure6(uint16_t port, const uint8_t addr[16], uint8_t prefix_len, struct ep_error *err)
{
	if (check_created(err) || check_port(port, err))
		return -1;
	if (prefix_len > 128)
		return ep_fail(err, EP_EINVAL, "IPv6 prefix length %u above 128", prefix_len);
	struct ep_port_rt *p = &ep_dp.ports[port];
	if (!ep_addr6_is_zero(p->addr6) && memcmp(p->addr6, addr, 16) != 0)
		ep_local_addr6_del(port, p->addr6, NULL);
	memcpy(p->addr6, addr, 16);
	p->prefix6_len = prefix_len;
	if (ep_addr6_is_zero(addr))
		return 0;
	if (ep_local_addr6_add(port, addr, err))
		return -1;
	static const uint8_t connected[16];
	if (prefix_len > 0 && ep_route6_add(addr, prefix_len, port, connected, err))
		return -1;
	return 0;
}
