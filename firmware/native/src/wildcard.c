/* Wildcard affinities on rte_acl. Addresses use BITMASK fields, so non-contiguous masks work as
 * the protocol requires ((mask & rule) == (mask & packet)); ports are ranges (0 = 0..65535).
 * A set is built whole on the control thread and swapped in by the caller. */
#include <stdio.h>
#include <string.h>

#include <rte_acl.h>
#include <rte_malloc.h>

#include "dp.h"

enum { F_PROTO, F_SRC, F_DST, F_SPORT, F_DPORT, F__COUNT };

RTE_ACL_RULE_DEF(ep_acl_rule, F__COUNT);

/* rte_acl wants the first field to be one byte and the rest grouped in 4-byte input words. */
static const struct rte_acl_field_def field_defs[F__COUNT] = {
	{ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 1, .field_index = F_PROTO, .input_index = 0,
	  .offset = offsetof(struct ep_acl_input, proto) },
	{ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 4, .field_index = F_SRC, .input_index = 1,
	  .offset = offsetof(struct ep_acl_input, src) },
	{ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 4, .field_index = F_DST, .input_index = 2,
	  .offset = offsetof(struct ep_acl_input, dst) },
	{ .type = RTE_ACL_FIELD_TYPE_RANGE, .size = 2, .field_index = F_SPORT, .input_index = 3,
	  .offset = offsetof(struct ep_acl_input, sport) },
	{ .type = RTE_ACL_FIELD_TYPE_RANGE, .size = 2, .field_index = F_DPORT, .input_index = 3,
	  .offset = offsetof(struct ep_acl_input, dport) },
};

static int check_action(const struct ep_action *a, uint32_t i, struct ep_error *err)
{
	if (a->type < EP_ACT_FORWARD || a->type > EP_ACT_SERVICE)
		return ep_fail(err, EP_EINVAL, "wildcard %u: unknown action type %u", i, a->type);
	if (a->type == EP_ACT_SERVICE && a->service_id >= EP_MAX_SERVICES)
		return ep_fail(err, EP_EINVAL, "wildcard %u: service id %u out of range", i, a->service_id);
	if (a->type == EP_ACT_FORWARD && a->out_port != EP_PORT_ROUTE &&
	    (a->out_port >= ep_dp.nports || !ep_dp.ports[a->out_port].used))
		return ep_fail(err, EP_ENOPORT, "wildcard %u: output port %u does not exist", i, a->out_port);
	if (a->dispatch > EP_DISPATCH_GUE)
		return ep_fail(err, EP_EINVAL, "wildcard %u: unknown dispatch mode %u", i, a->dispatch);
	return 0;
}

/* An rte_acl context of the IPv4 rules (count of them), or of those without cascade. NULL with
 * count 0 is not an error. */
static struct rte_acl_ctx *build_acl4(const struct ep_wildcard *rules, uint32_t n, int finals_only, uint32_t count,
				      struct ep_error *err)
{
	static uint32_t generation;
	char name[32];
	if (count == 0)
		return NULL;
	snprintf(name, sizeof(name), "ep_acl_%u", generation++);
	struct rte_acl_param param = {
		.name = name,
		.socket_id = SOCKET_ID_ANY,
		.rule_size = RTE_ACL_RULE_SZ(F__COUNT),
		.max_rule_num = count,
	};
	struct rte_acl_ctx *acl = rte_acl_create(&param);
	if (!acl) {
		ep_fail(err, EP_EEAL, "rte_acl_create failed: %s", rte_strerror(rte_errno));
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct ep_wildcard *w = &rules[i];
		if (w->family == 6 || (finals_only && w->cascade))
			continue;
		struct ep_acl_rule r;
		memset(&r, 0, sizeof(r));
		/* priority must be >= 1; userdata 0 means "no match" to rte_acl, so store index + 1 */
		r.data.priority = (int32_t)w->precedence + 1;
		r.data.category_mask = 1;
		r.data.userdata = i + 1;
		r.field[F_PROTO].value.u8 = w->proto;
		r.field[F_PROTO].mask_range.u8 = w->proto ? 0xff : 0;
		r.field[F_SRC].value.u32 = rte_be_to_cpu_32(w->src_ip & w->src_mask);
		r.field[F_SRC].mask_range.u32 = rte_be_to_cpu_32(w->src_mask);
		r.field[F_DST].value.u32 = rte_be_to_cpu_32(w->dst_ip & w->dst_mask);
		r.field[F_DST].mask_range.u32 = rte_be_to_cpu_32(w->dst_mask);
		uint16_t sport = rte_be_to_cpu_16(w->src_port), dport = rte_be_to_cpu_16(w->dst_port);
		r.field[F_SPORT].value.u16 = sport;
		r.field[F_SPORT].mask_range.u16 = sport ? sport : 0xffff;
		r.field[F_DPORT].value.u16 = dport;
		r.field[F_DPORT].mask_range.u16 = dport ? dport : 0xffff;
		int rc = rte_acl_add_rules(acl, (const struct rte_acl_rule *)&r, 1);
		if (rc) {
			ep_fail(err, EP_ERULE, "wildcard %u: rte_acl_add_rules: %s", i, rte_strerror(-rc));
			goto fail_acl;
		}
	}
	struct rte_acl_config cfg = { .num_categories = 1, .num_fields = F__COUNT };
	memcpy(cfg.defs, field_defs, sizeof(field_defs));
	int rc = rte_acl_build(acl, &cfg);
	if (rc) {
		ep_fail(err, EP_ERULE, "rte_acl_build of %u wildcards failed: %s", count, rte_strerror(-rc));
		goto fail_acl;
	}
	return acl;
fail_acl:
	rte_acl_free(acl);
	return NULL;
}

/* Keeps the cascade list in precedence order (best first; ties in rule order) as rules come. */
static void add_cascading(struct ep_wildcard_set *set, const struct ep_wildcard *w, uint32_t rule)
{
	uint32_t at = set->ncascade;
	while (at > 0 && set->cascade[at - 1].precedence < w->precedence) {
		set->cascade[at] = set->cascade[at - 1];
		set->extra[set->cascade[at].rule].cascade_pos = at;
		at--;
	}
	set->cascade[at] = (struct ep_cascade_rule){
		.rule = rule,
		.precedence = w->precedence,
		.src = w->src_ip & w->src_mask,
		.src_mask = w->src_mask,
		.dst = w->dst_ip & w->dst_mask,
		.dst_mask = w->dst_mask,
		.sport = w->src_port,
		.dport = w->dst_port,
		.proto = w->proto,
	};
	set->extra[rule].cascade_pos = at;
	set->ncascade++;
}

struct ep_wildcard_set *ep_wildcard_build(const struct ep_wildcard *rules, uint32_t n, struct ep_error *err)
{
	uint32_t ncascade = 0;
	for (uint32_t i = 0; i < n; i++)
		ncascade += rules[i].cascade != 0;
	struct ep_wildcard_set *set = rte_zmalloc(
		"ep_wildcards",
		sizeof(*set) + (sizeof(struct ep_action) + sizeof(struct ep_wildcard_extra)) * n +
			sizeof(struct ep_cascade_rule) * ncascade,
		RTE_CACHE_LINE_SIZE);
	if (!set) {
		ep_fail(err, EP_ENOMEM, "no memory for %u wildcard actions", n);
		return NULL;
	}
	set->n = n;
	set->extra = (struct ep_wildcard_extra *)&set->actions[n];
	set->cascade = (struct ep_cascade_rule *)&set->extra[n];
	uint32_t n4 = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct ep_wildcard *w = &rules[i];
		if (w->family != 0 && w->family != 4 && w->family != 6) {
			ep_fail(err, EP_EINVAL, "wildcard %u: address family %u is neither 4 nor 6", i, w->family);
			goto fail;
		}
		if (check_action(&w->action, i, err))
			goto fail;
		if (w->precedence > RTE_ACL_MAX_PRIORITY - 1) {
			ep_fail(err, EP_EINVAL, "wildcard %u: precedence %u above %u", i, w->precedence,
				RTE_ACL_MAX_PRIORITY - 1);
			goto fail;
		}
		set->actions[i] = w->action;
		if (w->cascade && w->family == 6) {
			ep_fail(err, EP_EINVAL, "wildcard %u: cascading is IPv4 only", i);
			goto fail;
		}
		if (w->cascade && (w->interest.hold & w->interest.mask)) {
			/* its service installs no fixed affinity the packet could wait for */
			ep_fail(err, EP_EINVAL, "wildcard %u: a cascading rule cannot hold packets", i);
			goto fail;
		}
		set->actions[i].flags2 = (uint16_t)((w->interest.mask ? EP_ACT_F2_INTEREST : 0) |
						    (w->cascade ? EP_ACT_F2_CASCADE : 0));
		set->extra[i] = (struct ep_wildcard_extra){ .id = w->id, .precedence = w->precedence, .interest = w->interest };
		if (w->cascade)
			add_cascading(set, w, i);
		n4 += w->family != 6;
	}
	if (ep_wildcard6_build(set, rules, n, err))
		goto fail;
	if (n4 == 0)
		return set;

	set->acl = build_acl4(rules, n, 0, n4, err);
	if (!set->acl)
		goto fail;
	if (ncascade) {
		set->acl_final = build_acl4(rules, n, 1, n4 - ncascade, err);
		if (!set->acl_final && n4 > ncascade)
			goto fail;
	}
	return set;
fail:
	ep_wildcard_free(set);
	return NULL;
}

void ep_wildcard_free(struct ep_wildcard_set *set)
{
	if (!set)
		return;
	rte_acl_free(set->acl);
	rte_acl_free(set->acl6);
	rte_acl_free(set->acl_final);
	rte_free(set);
}

void ep_wildcard_classify(const struct ep_wildcard_set *set, const uint8_t **data, uint32_t *results, uint32_t n)
{
	if (!set || !set->acl) {
		memset(results, 0, sizeof(*results) * n);
		return;
	}
	rte_acl_classify(set->acl, data, results, n, 1);
}

uint32_t ep_wildcard_classify_final(const struct ep_wildcard_set *set, const uint8_t *data)
{
	uint32_t result = 0;
	if (set->acl_final)
		rte_acl_classify(set->acl_final, &data, &result, 1, 1);
	return result;
}

uint32_t ep_wildcard_cascading(const struct ep_wildcard_set *set, uint32_t id)
{
	for (uint32_t i = 0; set && i < set->ncascade; i++)
		if (set->extra[set->cascade[i].rule].id == id)
			return set->cascade[i].rule + 1;
	return 0;
}
