/* Virtual services: weighted Maglev lookup tables (Eisenbud et al., NSDI 2016), built on the
 * control thread and published by pointer swap. Server slots keep their index across updates so
 * counters and the learned flows that point at a slot stay attached to the same server. */
#include <errno.h>
#include <string.h>

#include <rte_malloc.h>

#include "dp.h"

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: deterministic on every unit, so all members build the same table */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

/* A server's permutation of the table (offset, skip) comes from its address and port only, never
 * from its position in the pool: removing another server leaves it unchanged. */
void ep_maglev_permutation(const struct ep_server *srv, uint32_t table_size, uint32_t *offset, uint32_t *skip)
{
	/* an IPv6 server's address folds to 32 bits: still one permutation per server */
	uint32_t addr = srv->ip ? srv->ip : ep_addr6_fold(srv->ip6);
	uint64_t id = ((uint64_t)addr << 16) | srv->port;
	*offset = (uint32_t)(mix64(id) % table_size);
	*skip = (uint32_t)(mix64(id ^ 0xa5a5a5a5a5a5a5a5ull) % (table_size - 1)) + 1;
}

int ep_maglev_build(struct ep_service_rt *svc)
{
	uint32_t m = svc->table_size;
	if (!is_prime(m) || m > UINT16_MAX * 16u)
		return -EINVAL;
	svc->pick_size = m;
	uint32_t n = svc->nslots;
	uint32_t *offset = rte_malloc(NULL, sizeof(uint32_t) * 3 * (n ? n : 1), 0);
	if (!offset)
		return -ENOMEM;
	uint32_t *skip = offset + n, *next = skip + n;
	uint32_t max_weight = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct ep_server_slot *s = &svc->servers[i];
		ep_maglev_permutation(&s->srv, m, &offset[i], &skip[i]);
		next[i] = 0;
		if (s->present && s->srv.weight > max_weight)
			max_weight = s->srv.weight;
	}
	for (uint32_t e = 0; e < m; e++)
		svc->table[e] = UINT16_MAX;
	if (max_weight == 0) {
		rte_free(offset);
		return 0;
	}
	/* Weighted turns: every pass, a server earns its weight in credit and places one entry per
	 * max_weight of credit, so table shares follow weights while keeping Maglev's disruption bound. */
	uint32_t credit[EP_MAX_SERVERS] = { 0 };
	uint32_t filled = 0;
	while (filled < m) {
		for (uint32_t i = 0; i < n && filled < m; i++) {
			const struct ep_server_slot *s = &svc->servers[i];
			if (!s->present || s->srv.weight == 0)
				continue;
			credit[i] += s->srv.weight;
			while (credit[i] >= max_weight && filled < m) {
				credit[i] -= max_weight;
				uint32_t c;
				do {
					c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % m);
					next[i]++;
				} while (svc->table[c] != UINT16_MAX);
				svc->table[c] = (uint16_t)i;
				filled++;
			}
		}
	}
	rte_free(offset);
	return 0;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Smooth weighted round robin (as nginx does it) unrolled into a sequence the workers step
 * through: servers interleave instead of arriving in runs of their weight. */
int ep_wrr_build(struct ep_service_rt *svc)
{
	uint32_t g = 0, total = 0;
	for (uint32_t i = 0; i < svc->nslots; i++)
		if (svc->servers[i].present && svc->servers[i].srv.weight)
			g = gcd(g, svc->servers[i].srv.weight);
	for (uint32_t i = 0; i < svc->nslots; i++)
		if (svc->servers[i].present && svc->servers[i].srv.weight)
			total += svc->servers[i].srv.weight / g;
	svc->table[0] = UINT16_MAX;
	svc->pick_size = 1;
	if (total == 0)
		return 0;
	svc->pick_size = total < svc->table_size ? total : svc->table_size;
	int32_t current[EP_MAX_SERVERS] = { 0 };
	for (uint32_t e = 0; e < svc->pick_size; e++) {
		int best = -1;
		for (uint32_t i = 0; i < svc->nslots; i++) {
			const struct ep_server_slot *s = &svc->servers[i];
			if (!s->present || !s->srv.weight)
				continue;
			current[i] += (int32_t)(s->srv.weight / g);
			if (best < 0 || current[i] > current[best])
				best = (int)i;
		}
		current[best] -= (int32_t)total;
		svc->table[e] = (uint16_t)best;
	}
	return 0;
}

static struct ep_service_rt *service_alloc(uint32_t table_size)
{
	struct ep_service_rt *svc = rte_zmalloc("ep_service", sizeof(*svc), RTE_CACHE_LINE_SIZE);
	if (!svc)
		return NULL;
	svc->table = rte_malloc("ep_maglev", sizeof(uint16_t) * table_size, RTE_CACHE_LINE_SIZE);
	if (!svc->table) {
		rte_free(svc);
		return NULL;
	}
	svc->table_size = table_size;
	return svc;
}

static void service_free(struct ep_service_rt *svc)
{
	if (!svc)
		return;
	rte_free(svc->table);
	rte_free(svc);
}

/* Keeps each surviving server in its old slot; new servers take free slots. */
static int assign_slots(struct ep_service_rt *svc, const struct ep_service_rt *old, const struct ep_server *servers,
			uint32_t n, struct ep_error *err)
{
	uint8_t placed[EP_MAX_SERVERS] = { 0 };
	svc->nslots = old ? old->nslots : 0;
	for (uint32_t i = 0; i < n; i++) {
		int slot = -1;
		for (uint32_t s = 0; old && s < old->nslots; s++)
			if (old->servers[s].present && old->servers[s].srv.ip == servers[i].ip &&
			    memcmp(old->servers[s].srv.ip6, servers[i].ip6, 16) == 0 &&
			    old->servers[s].srv.port == servers[i].port) {
				slot = (int)s;
				break;
			}
		if (slot >= 0 && placed[slot])
			return ep_fail(err, EP_EINVAL, "server %u is listed twice", i);
		if (slot < 0) {
			for (uint32_t s = 0; s < svc->nslots && slot < 0; s++)
				if (!placed[s] && !(old && old->servers[s].present))
					slot = (int)s;
		}
		if (slot < 0) {
			if (svc->nslots == EP_MAX_SERVERS)
				return ep_fail(err, EP_EFULL, "more than %d server slots", EP_MAX_SERVERS);
			slot = (int)svc->nslots++;
		}
		placed[slot] = 1;
		svc->servers[slot].srv = servers[i];
		svc->servers[slot].present = 1;
	}
	return 0;
}

/* An IPv4 service has IPv4 servers, an IPv6 one IPv6 servers: the data plane translates between
 * addresses of one family only, and tunnels IPv4 in IPv4, IPv6 in IPv6. */
static int check_family(const struct ep_service_conf *conf, const struct ep_server *servers, uint32_t n,
			struct ep_error *err)
{
	if (conf->family != 0 && conf->family != 4 && conf->family != 6)
		return ep_fail(err, EP_EINVAL, "address family %u is neither 4 nor 6", conf->family);
	if (conf->family != 6) {
		for (uint32_t i = 0; i < n; i++)
			if (servers[i].ip == 0)
				return ep_fail(err, EP_EINVAL, "server %u has address 0.0.0.0", i);
		return 0;
	}
	if (ep_addr6_is_zero(conf->vip6))
		return ep_fail(err, EP_EINVAL, "an IPv6 service needs an IPv6 VIP");
	for (uint32_t i = 0; i < n; i++)
		if (servers[i].ip != 0 || ep_addr6_is_zero(servers[i].ip6))
			return ep_fail(err, EP_EINVAL, "server %u of an IPv6 service needs an IPv6 address (and no IPv4 one)", i);
	return 0;
}

static int check_qos(const struct ep_qos *q, const char *direction, struct ep_error *err)
{
	if (q->flags & ~EP_QOS_FLAGS)
		return ep_fail(err, EP_EINVAL, "QoS %s: unknown flags 0x%x", direction, q->flags & ~EP_QOS_FLAGS);
	if (((q->flags & EP_ACT_F_DSCP) && q->dscp > 63) || ((q->flags & EP_ACT_F_PCP) && q->pcp > 7) ||
	    ((q->flags & EP_ACT_F_MPLS_PUSH) && q->mpls_label > 0xfffff))
		return ep_fail(err, EP_EINVAL, "QoS %s: value out of range (DSCP 0-63, PCP 0-7, MPLS label 20 bits)", direction);
	return 0;
}

int ep_service_set(const struct ep_service_conf *conf, const struct ep_server *servers, uint32_t n,
		   struct ep_error *err)
{
	if (!ep_dp.created)
		return ep_fail(err, EP_ESTATE, "data plane not created");
	if (conf->id >= EP_MAX_SERVICES)
		return ep_fail(err, EP_EINVAL, "service id %u is not below %d", conf->id, EP_MAX_SERVICES);
	if (n > EP_MAX_SERVERS)
		return ep_fail(err, EP_EINVAL, "%u servers, at most %d", n, EP_MAX_SERVERS);
	if (conf->table_size < 7 || !is_prime(conf->table_size) || conf->table_size > 1000003)
		return ep_fail(err, EP_EINVAL, "table size %u is not a prime between 7 and 1000003", conf->table_size);
	if (check_family(conf, servers, n, err))
		return -1;
	if (conf->mode > EP_MODE_GUE)
		return ep_fail(err, EP_EINVAL, "unknown forwarding mode %u", conf->mode);
	if (conf->algorithm > EP_ALG_WRR)
		return ep_fail(err, EP_EINVAL, "unknown algorithm %u", conf->algorithm);
	if (conf->mode == EP_MODE_FULLNAT &&
	    ((conf->family == 6 ? ep_addr6_is_zero(conf->snat_ip6) : conf->snat_ip == 0) || conf->snat_port_min == 0 || conf->snat_port_max < conf->snat_port_min))
		return ep_fail(err, EP_EINVAL, "full NAT needs a source address and a port range min..max");
	if (check_qos(&conf->qos_to_server, "towards servers", err) || check_qos(&conf->qos_to_client, "towards clients", err))
		return -1;
	if (conf->qos_to_client.flags && conf->mode != EP_MODE_NAT && conf->mode != EP_MODE_FULLNAT)
		return ep_fail(err, EP_EINVAL, "QoS towards clients needs mode nat or fullnat (other modes' replies bypass the unit)");
	if (conf->mode == EP_MODE_GUE && conf->gue_port == 0)
		return ep_fail(err, EP_EINVAL, "GUE needs a destination port");
	if (conf->mode != EP_MODE_NAT && conf->mode != EP_MODE_FULLNAT)
		for (uint32_t i = 0; i < n; i++)
			if (servers[i].port != 0 && servers[i].port != conf->port)
				return ep_fail(err, EP_EINVAL,
					       "server %u: direct-return modes cannot change the port (server port must be 0 or the service port)",
					       i);

	struct ep_service_rt *prev = ep_dp.services[conf->id], *old = prev;
	struct ep_service_rt *svc = service_alloc(conf->table_size);
	if (!svc)
		return ep_fail(err, EP_ENOMEM, "no memory for a %u-entry Maglev table", conf->table_size);
	svc->conf = *conf;
	if (old && (old->conf.vip != conf->vip || memcmp(old->conf.vip6, conf->vip6, 16) != 0 || old->conf.port != conf->port || old->conf.proto != conf->proto))
		old = NULL; /* a different service under the same id: start slots afresh */
	if (assign_slots(svc, old, servers, n, err)) {
		service_free(svc);
		return -1;
	}
	if ((conf->algorithm == EP_ALG_WRR ? ep_wrr_build(svc) : ep_maglev_build(svc)) != 0) {
		service_free(svc);
		return ep_fail(err, EP_ENOMEM, "no memory to build the lookup table");
	}
	__atomic_store_n(&ep_dp.services[conf->id], svc, __ATOMIC_RELEASE);
	if (prev) {
		ep_rcu_wait();
		service_free(prev);
	}
	return 0;
}

int ep_service_del(uint32_t id, struct ep_error *err)
{
	if (id >= EP_MAX_SERVICES || !ep_dp.services[id])
		return ep_fail(err, EP_ENOENT, "service %u does not exist", id);
	struct ep_service_rt *old = ep_dp.services[id];
	__atomic_store_n(&ep_dp.services[id], NULL, __ATOMIC_RELEASE);
	ep_rcu_wait();
	service_free(old);
	return 0;
}

static int flush_server(uint32_t id, uint32_t ip, const uint8_t *ip6, uint16_t port, struct ep_error *err)
{
	static const uint8_t no_ip6[16];
	const struct ep_service_rt *svc = id < EP_MAX_SERVICES ? ep_dp.services[id] : NULL;
	if (!svc)
		return ep_fail(err, EP_ENOENT, "service %u does not exist", id);
	if (!ip6)
		ip6 = no_ip6;
	for (uint32_t s = 0; s < svc->nslots; s++)
		if (svc->servers[s].present && svc->servers[s].srv.ip == ip && memcmp(svc->servers[s].srv.ip6, ip6, 16) == 0 &&
		    svc->servers[s].srv.port == port) {
			__atomic_fetch_add(&ep_dp.server_epochs[id * EP_MAX_SERVERS + s], 1, __ATOMIC_RELEASE);
			return 0;
		}
	return ep_fail(err, EP_ENOENT, "service %u has no such server", id);
}

int ep_service_flush_server(uint32_t id, uint32_t ip, uint16_t port, struct ep_error *err)
{
	return flush_server(id, ip, NULL, port, err);
}

int ep_service_flush_server6(uint32_t id, const uint8_t ip6[16], uint16_t port, struct ep_error *err)
{
	return flush_server(id, 0, ip6, port, err);
}
