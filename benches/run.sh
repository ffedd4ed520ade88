#!/bin/bash
# Measures the scale figures of issue 14 and rewrites the generated table of BENCHMARKS.md
# (between the `bench:scale` markers), each row with the command behind it.
#
#   benches/run.sh            # 10 000 and 100 000 idle connections, ab -c 1000, the loopback reset
#   benches/run.sh --million  # also the million-connection run (about 10× the 100 000 one)
#
# Wall times on a shared machine move by ±30 %: compare ratios, repeat before trusting one.
# Memory per connection is (peak RSS at 100 000 − peak RSS at 10 000) / 90 000: the fixed
# cost of the process cancels out; each connection is both its ends (client and server socket).
set -euo pipefail
cd "$(dirname "$0")/.."
million=false
[ "${1:-}" = "--million" ] && million=true

cargo build --release --quiet --bin tcpsim --example scale_models
bin=target/release/tcpsim
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints "wall_s rss_kb user_s" of one run.
measure() {
    /usr/bin/time -f "%e %M %U" -o "$tmp/time" "$bin" run "$1" > "$tmp/out"
    cat "$tmp/time"
}

rows=()
row() { rows+=("| $1 | $2 | \`$3\` |"); }

sizes=(10000 100000)
$million && sizes+=(1000000)
declare -A user rss
for n in "${sizes[@]}"; do
    if [ "$n" = 1000000 ]; then f=models/scale/idle-1000000.toml; else
        f="$tmp/idle-$n.toml"
        target/release/examples/scale_models idle "$n" > "$f"
    fi
    read -r w r u < <(measure "$f")
    user[$n]=$u; rss[$n]=$r
    row "$n idle keepalive connections, 2 h simulated, a tenth partitioned" "$w s wall, $u s CPU, $((r / 1024)) MB peak RSS" \
        "scale_models idle $n > idle.toml && /usr/bin/time -f '%e s %U s %M KB' tcpsim run idle.toml"
done
per=$(( (rss[100000] - rss[10000]) * 1024 / 90000 ))
row "memory per idle connection (both ends, report included; goal 1 KiB)" "$per bytes" \
    "(RSS at 100 000 − RSS at 10 000) / 90 000"
# Growth in CPU time: wall time on the shared machine is noisier.
growth=$(awk -v a="${user[10000]}" -v b="${user[100000]}" 'BEGIN { printf "%.1f", b / a }')
row "growth of CPU time 10 000 → 100 000 (goal ≈ 10×)" "${growth}×" "the two rows above"
if $million; then
    growth=$(awk -v a="${user[100000]}" -v b="${user[1000000]}" 'BEGIN { printf "%.1f", b / a }')
    row "growth of CPU time 100 000 → 1 000 000 (goal ≈ 10×)" "${growth}×" "the rows above"
fi

for m in models/scale/ab-c1000.toml models/ab-loopback-reset.toml; do
    read -r w r u < <(measure "$m")
    # Every ab's outcome line, joined.
    done_line=$(grep "complete .*failed" "$tmp/out" | sed 's/^ *//' | paste -sd'/' | sed 's#/# / #g')
    row "\`$m\`" "$w s wall, $u s CPU, $((r / 1024)) MB; $done_line" "/usr/bin/time -f '%e s %U s %M KB' tcpsim run $m"
done

table="| run | measured | command |
| --- | --- | --- |
$(printf '%s\n' "${rows[@]}")

Measured at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d) (load average $(cut -d' ' -f1 /proc/loadavg))."

python3 - "$table" <<'PY'
import re, sys
path = "BENCHMARKS.md"
text = open(path).read()
begin, end = "<!-- bench:scale begin (benches/run.sh writes this) -->", "<!-- bench:scale end -->"
new = f"{begin}\n{sys.argv[1]}\n{end}"
if begin in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: new, text, flags=re.S)
else:
    text = text.replace("## Scale: connections, ab, ports (issue 14)\n", "## Scale: connections, ab, ports (issue 14)\n\n" + new + "\n", 1)
open(path, "w").write(text)
PY
echo "BENCHMARKS.md: scale table rewritten"
