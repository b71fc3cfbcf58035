#!/usr/bin/env bash
# Server-side setup for the appliance's direct-return forwarding modes (SR-R7, docs/modes.md).
#
#   tunnel-setup.sh --mode dsr|ipip|gre|gue --vip VIP [--gue-port 6080] [--dev IFACE] [--decap auto|kernel|bpf]
#   tunnel-setup.sh --undo --vip VIP [--dev IFACE]
#   (VIP: an IPv4 or an IPv6 address; an IPv6 VIP's tunnels carry IPv6 in IPv6)
#
# Every mode: the VIP on lo (/32, IPv6 /128), so the server accepts packets for it and answers from
# it straight to the client. IPv4: arp_ignore=1 / arp_announce=2 so the server never answers ARP for
# the VIP nor uses it as an ARP source (the appliance owns the VIP on the network); IPv6 needs no
# counterpart (neighbour discovery only answers for the asking interface's own addresses).
# Tunnel modes also decapsulate what the appliance sends (outer source = the appliance port's
# address, outer destination = this server), IPv4 VIP / IPv6 VIP:
#   ipip  IPv4 protocol 4 / IPv6 next header 41
#                                    kernel: an "ipip external" / "ip6tnl external" device
#                                    (receives from any source)
#   gre   protocol 47, 4-byte GRE header (no key/checksum/sequence) with protocol 0x0800 / 0x86DD
#                                    kernel: a "gre external" / "ip6gre external" device
#   gue   UDP to --gue-port, 4-byte GUE header {0x00, 4 / 41, 0x00, 0x00}
#                                    kernel: "ip fou add port P gue [-6]" hands the payload to the
#                                    IP-in-IP handler, which needs the ipip / ip6tnl device above
# and (IPv4) rp_filter=0: the decapsulated packet arrives on the tunnel device while the route back
# to the client leaves through another one.
# --decap bpf (and auto on a kernel built without these devices) strips the outer headers with a tc
# ingress BPF program on --dev instead (compiled here with clang; the inner packet then continues up
# the stack on --dev as if it had arrived unencapsulated). The two families' decapsulators are
# independent: one tunnel kind per family at a time.
# --dev defaults to the interface of the default route. Idempotent: running it twice changes
# nothing. Prints one line per action.
set -euo pipefail

MODE=
VIP=
GUE_PORT=6080
DEV=
DECAP=auto
UNDO=0

usage() {
	sed -n '4,5p' "$0" | sed 's/^# */usage: /' >&2
	exit 2
}

say() { echo "tunnel-setup: $*"; }

while (($#)); do
	case $1 in
	--mode) MODE=${2:-}; shift 2 ;;
	--vip) VIP=${2:-}; shift 2 ;;
	--gue-port) GUE_PORT=${2:-}; shift 2 ;;
	--dev) DEV=${2:-}; shift 2 ;;
	--decap) DECAP=${2:-}; shift 2 ;;
	--undo) UNDO=1; shift ;;
	*) usage ;;
	esac
done
FAMILY=4
[[ $VIP == *:* ]] && FAMILY=6
[[ $VIP =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || ($FAMILY == 6 && $VIP =~ ^[0-9A-Fa-f:.]+$) ]] || usage
((UNDO)) || [[ $MODE =~ ^(dsr|ipip|gre|gue)$ ]] || usage
# Names of what this script creates, per family, so --undo finds them again.
if ((FAMILY == 6)); then
	VIP_PREFIX=128 IPIP_DEV=eptun6-ipip GRE_DEV=eptun6-gre IPIP_TYPE=ip6tnl GRE_TYPE=ip6gre
	BPF_PREF=4906 BPF_NAME=decap6 FOU_FAMILY=-6 INNER_PROTO=41
else
	VIP_PREFIX=32 IPIP_DEV=eptun-ipip GRE_DEV=eptun-gre IPIP_TYPE=ipip GRE_TYPE=gre
	BPF_PREF=4900 BPF_NAME=decap FOU_FAMILY= INNER_PROTO=4
fi
[[ $DECAP =~ ^(auto|kernel|bpf)$ ]] || usage
[[ $GUE_PORT =~ ^[0-9]+$ ]] && ((GUE_PORT > 0 && GUE_PORT < 65536)) || usage
if [[ -z $DEV ]]; then
	DEV=$(ip "-$FAMILY" -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	[[ -n $DEV ]] || { echo "tunnel-setup: no default route; name the interface with --dev" >&2; exit 1; }
fi

set_sysctl() {
	local key=$1 value=$2
	if [[ $(sysctl -n "$key") != "$value" ]]; then
		sysctl -q -w "$key=$value"
		say "set $key=$value"
	fi
}

has_link() { ip link show dev "$1" >/dev/null 2>&1; }

# The BPF decapsulator's object name says what it strips: decap[6]-<mode>-<gue port>.o.
bpf_filter_name() {
	tc filter show dev "$DEV" ingress 2>/dev/null | sed -n "s/.* pref $BPF_PREF bpf .* \($BPF_NAME-[a-z]*-[0-9]*\.o\):\[tc\].*/\1/p"
}

# The GUE ports of this family's fou receivers ("ip fou show" marks IPv6 ones with -6).
fou_ports() {
	ip fou show 2>/dev/null | awk -v v6="$((FAMILY == 6))" '$1 == "port" && /gue/ && (/ -6/ ? 1 : 0) == v6 { print $2 }'
}

# Removes the decapsulators of this family this script may have set up, except the one named by $1
# (ipip-device, gre-device, fou-<port>, bpf-<object name>): one tunnel kind at a time, a leftover
# from another mode would take its packets.
remove_decap_except() {
	local keep=${1:-} port
	if has_link "$IPIP_DEV" && [[ $keep != ipip-device && $keep != fou-* ]]; then ip link del "$IPIP_DEV"; say "deleted $IPIP_DEV"; fi
	if has_link "$GRE_DEV" && [[ $keep != gre-device ]]; then ip link del "$GRE_DEV"; say "deleted $GRE_DEV"; fi
	for port in $(fou_ports); do
		[[ $keep == "fou-$port" ]] && continue
		ip fou del port "$port" ${FOU_FAMILY:+"$FOU_FAMILY"}
		say "removed fou port $port (gue$FOU_FAMILY)"
	done
	local name
	name=$(bpf_filter_name)
	if [[ -n $name && $keep != "bpf-$name" ]]; then
		tc filter del dev "$DEV" ingress pref "$BPF_PREF"
		say "removed the BPF decapsulator $name from $DEV ingress"
	fi
}

vip_on_lo() { [[ -n $(ip "-$FAMILY" -o address show dev lo to "$VIP/$VIP_PREFIX") ]]; }

if ((UNDO)); then
	if vip_on_lo; then
		ip "-$FAMILY" address del "$VIP/$VIP_PREFIX" dev lo
		say "removed $VIP/$VIP_PREFIX from lo"
	fi
	remove_decap_except none
	if ((FAMILY == 4)); then
		set_sysctl net.ipv4.conf.all.arp_ignore 0
		set_sysctl net.ipv4.conf.all.arp_announce 0
		say "undone (rp_filter settings are left as they are)"
	else
		say "undone"
	fi
	exit 0
fi

if ((FAMILY == 4)); then
	set_sysctl net.ipv4.conf.all.arp_ignore 1
	set_sysctl net.ipv4.conf.all.arp_announce 2
else
	set_sysctl net.ipv6.conf.lo.disable_ipv6 0
fi
if ! vip_on_lo; then
	ip "-$FAMILY" address add "$VIP/$VIP_PREFIX" dev lo
	say "added $VIP/$VIP_PREFIX to lo"
fi
ip link set dev lo up
if [[ $MODE == dsr ]]; then
	say "dsr ready: $VIP on lo, frames for it arrive on $DEV with this server's MAC"
	exit 0
fi

# A kernel device of this type can be created here (the kernel has IPIP / GRE / FOU).
kernel_can() {
	local probe=eptun-probe$$ ok=0
	case $1 in
	ipip) ip link add "$probe" type "$IPIP_TYPE" external 2>/dev/null && ok=1 ;;
	gre) ip link add "$probe" type "$GRE_TYPE" external 2>/dev/null && ok=1 ;;
	gue) ip link add "$probe" type "$IPIP_TYPE" external 2>/dev/null && ip fou show >/dev/null 2>&1 && ok=1 ;;
	esac
	ip link del "$probe" 2>/dev/null || true
	((ok))
}

kernel_decap() {
	local dev=$IPIP_DEV type=$IPIP_TYPE
	[[ $MODE == gre ]] && dev=$GRE_DEV type=$GRE_TYPE
	case $MODE in ipip) remove_decap_except ipip-device ;; gre) remove_decap_except gre-device ;; gue) remove_decap_except "fou-$GUE_PORT" ;; esac
	if ! has_link "$dev"; then
		ip link add "$dev" type "$type" external
		say "created $dev ($type external: accepts tunnels from any source)"
	fi
	ip link set dev "$dev" up
	if [[ $MODE == gue ]] && ! grep -qx "$GUE_PORT" <<<"$(fou_ports)"; then
		ip fou add port "$GUE_PORT" gue ${FOU_FAMILY:+"$FOU_FAMILY"}
		say "added fou port $GUE_PORT gue$FOU_FAMILY (payload protocol $INNER_PROTO goes to $dev)"
	fi
	((FAMILY == 6)) || set_sysctl "net.ipv4.conf.$dev.rp_filter" 0
}

bpf_decap() {
	command -v clang >/dev/null || { echo "tunnel-setup: --decap bpf needs clang (apt-get install clang libbpf-dev)" >&2; exit 1; }
	local proto object=$BPF_NAME-$MODE-$GUE_PORT.o
	case $MODE in ipip) proto=$INNER_PROTO ;; gre) proto=47 ;; gue) proto=17 ;; esac
	remove_decap_except "bpf-$object"
	[[ $(bpf_filter_name) == "$object" ]] && return
	local work
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	cat >"$work/decap.c" <<'EOF'
/* tc ingress: strip the appliance's outer IPv4 or IPv6 (OUTER_FAMILY) header, + GRE, or + UDP +
 * GUE; the inner packet, of the outer one's family, continues up the stack on the same device.
 * Anything else passes untouched. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_FRAGMENT_BITS 0x3fff /* more-fragments flag and offset */
/* Numbers, not IPPROTO_*: those are enum constants, which #if would read as 0. */
#define PROTO_GRE 47
#define PROTO_UDP 17

#if OUTER_FAMILY == 6
#define OUTER_IP_LEN 40
#define ETH_P_OUTER ETH_P_IPV6
#define INNER_PROTO 41 /* the GUE header's protocol: IPv6 */
#else
#define OUTER_IP_LEN 20
#define ETH_P_OUTER ETH_P_IP
#define INNER_PROTO 4
#endif

#if DECAP_PROTO == PROTO_GRE
#define OUTER_LEN (OUTER_IP_LEN + 4)
#elif DECAP_PROTO == PROTO_UDP
#define OUTER_LEN (OUTER_IP_LEN + 8 + 4)
#else
#define OUTER_LEN OUTER_IP_LEN
#endif

SEC("tc")
int decap(struct __sk_buff *skb)
{
	/* Senders such as AF_PACKET rings (the appliance's net_af_packet) leave all but the first bytes
	 * of a frame in page fragments, beyond data_end: bring the outer headers into the linear area. */
	if (skb->len < ETH_HLEN + OUTER_LEN || bpf_skb_pull_data(skb, ETH_HLEN + OUTER_LEN) != 0)
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_OUTER))
		return TC_ACT_OK;
#if OUTER_FAMILY == 6
	/* no extension headers: the appliance sends none, and a fragment header would hide the rest */
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end || ip6->nexthdr != DECAP_PROTO)
		return TC_ACT_OK;
	void *l4 = ip6 + 1;
#else
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != DECAP_PROTO ||
	    (ip->frag_off & bpf_htons(IP_FRAGMENT_BITS)))
		return TC_ACT_OK;
	void *l4 = ip + 1;
#endif
	__s32 outer = OUTER_IP_LEN;
#if DECAP_PROTO == PROTO_GRE
	__u8 *gre = l4;
	if ((void *)(gre + 4) > end || gre[0] || gre[1] || gre[2] != ETH_P_OUTER >> 8 || gre[3] != (ETH_P_OUTER & 0xff))
		return TC_ACT_OK;
	outer += 4;
#elif DECAP_PROTO == PROTO_UDP
	struct udphdr *udp = l4;
	__u8 *gue = (void *)(udp + 1);
	if ((void *)(gue + 4) > end || udp->dest != bpf_htons(GUE_PORT) || gue[0] || gue[1] != INNER_PROTO)
		return TC_ACT_OK;
	outer += sizeof(*udp) + 4;
#endif
	return bpf_skb_adjust_room(skb, -outer, BPF_ADJ_ROOM_MAC, 0) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
EOF
	clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -DOUTER_FAMILY="$FAMILY" -DDECAP_PROTO="$proto" \
		-DGUE_PORT="$GUE_PORT" -c "$work/decap.c" -o "$work/$object"
	if [[ $(tc qdisc show dev "$DEV") != *clsact* ]]; then
		tc qdisc add dev "$DEV" clsact
		say "added a clsact qdisc to $DEV"
	fi
	tc filter replace dev "$DEV" ingress pref "$BPF_PREF" handle 1 bpf direct-action obj "$work/$object" sec tc
	local what="IPv4 protocol $proto"
	((FAMILY == 6)) && what="IPv6 next header $proto"
	say "attached the BPF $MODE decapsulator ($what$([[ $MODE == gue ]] && echo ", UDP port $GUE_PORT")) to $DEV ingress"
}

if [[ $DECAP == auto ]]; then
	if kernel_can "$MODE"; then DECAP=kernel; else DECAP=bpf; say "this kernel has no $MODE device support; using the BPF decapsulator"; fi
fi
if ((FAMILY == 4)); then
	# The decapsulated packet's source (the client) routes back through another interface.
	set_sysctl net.ipv4.conf.all.rp_filter 0
	set_sysctl "net.ipv4.conf.$DEV.rp_filter" 0
fi
if [[ $DECAP == kernel ]]; then kernel_decap; else bpf_decap; fi
say "$MODE ready: $VIP on lo, tunnelled packets decapsulated ($DECAP)"
