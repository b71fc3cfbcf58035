# Progress output shared by the image build and the QEMU harness: every line
# carries the seconds elapsed since the script started, so slow steps on a
# shared 2-core machine are visible in CI logs.
EDGEPLANE_T0=${EDGEPLANE_T0:-$(date +%s.%N)}

elapsed() { awk -v t0="$EDGEPLANE_T0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t0 }'; }

step() { printf '[%7ss] == %s\n' "$(elapsed)" "$*" >&2; }
note() { printf '[%7ss]    %s\n' "$(elapsed)" "$*" >&2; }
die() { printf '[%7ss] ERROR: %s\n' "$(elapsed)" "$*" >&2; exit 1; }

human_size() { numfmt --to=iec-i --suffix=B "$1"; }

# Size report for a file or directory: apparent bytes for files (disk images
# are sparse, so allocated bytes are reported too), total bytes for trees.
report_size() {
  local path=$1
  if [[ -d $path ]]; then
    note "$path: $(human_size "$(du -sb "$path" | cut -f1)")"
  else
    note "$path: $(human_size "$(stat -c %s "$path")") ($(human_size "$(du -B1 "$path" | cut -f1)") allocated)"
  fi
}
