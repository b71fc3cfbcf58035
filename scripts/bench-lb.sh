#!/usr/bin/env bash
# Load-balancer figures of issue 3 (method and results: docs/modes.md):
#   Maglev  table build time (1000 servers, 65537 and 655373 entries), balance, and the share of
#           connections that change server when 1 of N servers is removed, against the ideal 1/N
#           (bench_maglev);
#   flows   new connections per second per worker core through the service path, and Mpps over
#           1M established connections, for NAT and the tunnel modes (bench_newflows).
# TESTPMD_MPPS_PER_CPU (testpmd macswap Mpps per worker CPU-second, measured by scripts/bench.sh in
# the same run) adds the ratio column; without it only absolute figures are printed.
# Environment: BENCH_SECONDS (measured seconds of the established phase, default 5), BENCH_WARMUP
# (default 1), BENCH_CONNECTIONS (default 1000000), BENCH_LB_MODES (default "nat ipip gue").
set -euo pipefail

cd "$(dirname "$0")/.."
MEASURE_S=${BENCH_SECONDS:-5}
WARMUP_S=${BENCH_WARMUP:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-1000000}
MODES=${BENCH_LB_MODES:-nat ipip gue}
BENCH_DIR=firmware/native/bench/build

make -s -C firmware/native/bench
LOG_DIR=$(mktemp -d /tmp/edgeplane-bench-lb.XXXXXX)
echo "bench-lb: logs in $LOG_DIR"

# Prints the value of key from the "result: k=v ..." lines of a log (the last occurrence).
result() {
	grep '^result:' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -n 1
}

run() { # run LOG COMMAND...: fails loudly with the log's tail
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "bench-lb: $* failed:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
}

log=$LOG_DIR/maglev.log
run "$log" "$BENCH_DIR/bench_maglev" --file-prefix "bench-maglev-$$"
echo
echo "Maglev (ep_service_set):"
grep '^result: build_servers=' "$log" | while read -r line; do
	set -- $line
	printf '  build, %s servers, table %s: %s ms median (min %s ms)\n' "${2#build_servers=}" "${3#table_size=}" \
		"${4#build_ms_median=}" "${5#build_ms_min=}"
done
printf '  table 65537, 1000 servers: table share per server vs mean: max %s, min %s\n' \
	"$(result "$log" max_share_vs_mean)" "$(result "$log" min_share_vs_mean)"
printf '  %-8s %8s %12s %10s %10s %22s\n' servers table moved ideal ratio "moved, server kept"
grep '^result: servers=' "$log" | while read -r line; do
	set -- $line
	printf '  %-8s %8s %12s %10s %10s %22s\n' "${2#servers=}" "${3#table=}" "${4#moved_share=}" "${5#ideal=}" \
		"${6#moved_vs_ideal=}" "${7#moved_needlessly_share=}"
done

echo
echo "Connections per worker core ($CONNECTIONS connections, 64-byte TCP frames, ${MEASURE_S} s established phase):"
printf '  %-6s %14s %14s %12s %12s %8s\n' mode "new conn/s" "new/CPU-s" "est. Mpps" "Mpps/CPU-s" ratio
for mode in $MODES; do
	log=$LOG_DIR/newflows-$mode.log
	run "$log" "$BENCH_DIR/bench_newflows" --mode "$mode" --connections "$CONNECTIONS" --seconds "$MEASURE_S" \
		--warmup "$WARMUP_S" --file-prefix "bench-newflows-$$"
	per_cpu=$(result "$log" established_mpps_per_cpu)
	ratio=n/a
	[[ -n ${TESTPMD_MPPS_PER_CPU:-} ]] && ratio=$(awk -v a="$per_cpu" -v b="$TESTPMD_MPPS_PER_CPU" 'BEGIN { printf "%.3f", a / b }')
	printf '  %-6s %14s %14s %12s %12s %8s\n' "$mode" "$(result "$log" new_conn_per_s)" \
		"$(result "$log" new_conn_per_cpu_s)" "$(result "$log" established_mpps)" "$per_cpu" "$ratio"
done

# The HTTP comparison with IPVS (ipvsadm in the same namespaces, same servers) needs the kernel's
# ip_vs; a kernel built without it cannot run IPVS at all, so the comparison is reported as skipped
# with the reason rather than measured half-way (docs/benchmarks.md).
echo
echo "IPVS comparison (same HTTP workload through ipvsadm vs this appliance):"
if [[ -e /proc/net/ip_vs ]]; then
	echo "  not measured: ip_vs is available here, but the IPVS side of the comparison is not written yet"
elif [[ -r /proc/config.gz && $'\n'$(zcat /proc/config.gz) == *$'\n# CONFIG_IP_VS is not set'* ]]; then
	echo "  skipped: this kernel ($(uname -r)) is built without IPVS (CONFIG_IP_VS is not set in /proc/config.gz; no /lib/modules to load it from)"
else
	echo "  skipped: no /proc/net/ip_vs on kernel $(uname -r): IPVS is not available"
fi
