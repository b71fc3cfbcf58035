/* IPv6 wildcard affinities: a second rte_acl context beside wildcard.c's, built from the family 6
 * rules of the same set. Each address is four 32-bit BITMASK fields (rte_acl compares 4-byte
 * input words), so non-contiguous masks work as for IPv4; ports are ranges, precedence and the
 * action index (userdata) mean what they mean there. */
#include <stdio.h>
#include <string.h>

#include <rte_acl.h>

#include "dp.h"

enum { F_PROTO, F_SRC0, F_DST0 = F_SRC0 + 4, F_SPORT = F_DST0 + 4, F_DPORT, F__COUNT };

RTE_ACL_RULE_DEF(ep_acl6_rule, F__COUNT);

static void field_defs(struct rte_acl_field_def *defs)
{
	defs[F_PROTO] = (struct rte_acl_field_def){ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 1, .field_index = F_PROTO,
						     .input_index = 0, .offset = offsetof(struct ep_acl_input6, proto) };
	for (int w = 0; w < 4; w++) {
		defs[F_SRC0 + w] = (struct rte_acl_field_def){ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 4,
								.field_index = (uint8_t)(F_SRC0 + w), .input_index = (uint8_t)(1 + w),
								.offset = (uint32_t)(offsetof(struct ep_acl_input6, src) + 4 * w) };
		defs[F_DST0 + w] = (struct rte_acl_field_def){ .type = RTE_ACL_FIELD_TYPE_BITMASK, .size = 4,
								.field_index = (uint8_t)(F_DST0 + w), .input_index = (uint8_t)(5 + w),
								.offset = (uint32_t)(offsetof(struct ep_acl_input6, dst) + 4 * w) };
	}
	defs[F_SPORT] = (struct rte_acl_field_def){ .type = RTE_ACL_FIELD_TYPE_RANGE, .size = 2, .field_index = F_SPORT,
						     .input_index = 9, .offset = offsetof(struct ep_acl_input6, sport) };
	defs[F_DPORT] = (struct rte_acl_field_def){ .type = RTE_ACL_FIELD_TYPE_RANGE, .size = 2, .field_index = F_DPORT,
						     .input_index = 9, .offset = offsetof(struct ep_acl_input6, dport) };
}

static uint32_t word_of(const uint8_t *addr, int w)
{
	uint32_t v;
	memcpy(&v, addr + 4 * w, 4);
	return rte_be_to_cpu_32(v);
}

int ep_wildcard6_build(struct ep_wildcard_set *set, const struct ep_wildcard *rules, uint32_t n, struct ep_error *err)
{
	static uint32_t generation;
	uint32_t n6 = 0;
	for (uint32_t i = 0; i < n; i++)
		n6 += rules[i].family == 6;
	if (n6 == 0)
		return 0;
	char name[32];
	snprintf(name, sizeof(name), "ep_acl6_%u", generation++);
	struct rte_acl_param param = {
		.name = name,
		.socket_id = SOCKET_ID_ANY,
		.rule_size = RTE_ACL_RULE_SZ(F__COUNT),
		.max_rule_num = n6,
	};
	set->acl6 = rte_acl_create(&param);
	if (!set->acl6)
		return ep_fail(err, EP_EEAL, "rte_acl_create (IPv6) failed: %s", rte_strerror(rte_errno));
	for (uint32_t i = 0; i < n; i++) {
		const struct ep_wildcard *w = &rules[i];
		if (w->family != 6)
			continue;
		struct ep_acl6_rule r;
		memset(&r, 0, sizeof(r));
		r.data.priority = (int32_t)w->precedence + 1;
		r.data.category_mask = 1;
		r.data.userdata = i + 1;
		r.field[F_PROTO].value.u8 = w->proto;
		r.field[F_PROTO].mask_range.u8 = w->proto ? 0xff : 0;
		for (int k = 0; k < 4; k++) {
			uint32_t src_mask = word_of(w->src_mask6, k), dst_mask = word_of(w->dst_mask6, k);
			r.field[F_SRC0 + k].value.u32 = word_of(w->src_ip6, k) & src_mask;
			r.field[F_SRC0 + k].mask_range.u32 = src_mask;
			r.field[F_DST0 + k].value.u32 = word_of(w->dst_ip6, k) & dst_mask;
			r.field[F_DST0 + k].mask_range.u32 = dst_mask;
		}
		uint16_t sport = rte_be_to_cpu_16(w->src_port), dport = rte_be_to_cpu_16(w->dst_port);
		r.field[F_SPORT].value.u16 = sport;
		r.field[F_SPORT].mask_range.u16 = sport ? sport : 0xffff;
		r.field[F_DPORT].value.u16 = dport;
		r.field[F_DPORT].mask_range.u16 = dport ? dport : 0xffff;
		int rc = rte_acl_add_rules(set->acl6, (const struct rte_acl_rule *)&r, 1);
		if (rc)
			return ep_fail(err, EP_ERULE, "wildcard %u: rte_acl_add_rules (IPv6): %s", i, rte_strerror(-rc));
	}
	struct rte_acl_config cfg = { .num_categories = 1, .num_fields = F__COUNT };
	field_defs(cfg.defs);
	int rc = rte_acl_build(set->acl6, &cfg);
	if (rc)
		return ep_fail(err, EP_ERULE, "rte_acl_build of %u IPv6 wildcards failed: %s", n6, rte_strerror(-rc));
	return 0;
}

uint32_t ep_wildcard6_classify(const struct ep_wildcard_set *set, const struct ep_acl_input6 *in)
{
	if (!set || !set->acl6)
		return 0;
	const uint8_t *data = (const uint8_t *)in;
	uint32_t result = 0;
	rte_acl_classify(set->acl6, &data, &result, 1, 1);
	return result;
}
