#!/usr/bin/env bash
# Renders a drill report's HTML (`ctix drill report ID --format html`) in headless Chromium:
# writes a PNG screenshot and checks that the page loads without errors and that its DOM holds
# the timeline chart with a lane per participant and a marker per inject.
#
#   scripts/render-report.sh REPORT.html OUT.png
#
# Chromium comes from PATH (chromium, chromium-browser, google-chrome); if none is there it is
# installed from Debian's packages, which needs root (CI runs as root). Exit codes: 0 rendered
# and checked, 1 rendering or the check failed, 2 usage or setup error.
set -euo pipefail

die() { echo "render-report: $1" >&2; exit "${2:-1}"; }

[[ $# -eq 2 ]] || die "usage: $0 REPORT.html OUT.png" 2
report=$1
out=$2
[[ -f $report ]] || die "$report: no such file; write one with \`ctix drill report ID --format html --out $report\`" 2
[[ -d $(dirname -- "$out") ]] || die "$(dirname -- "$out"): the output directory does not exist" 2

# shellcheck source=scripts/lib/chromium.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/chromium.sh"
ensure_chromium render-report

# An absolute file:// URL, so that the page loads whatever the working directory.
url="file://$(cd -- "$(dirname -- "$report")" && pwd)/$(basename -- "$report")"
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
# A profile of its own, so that a desktop session's Chromium does not interfere.
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile"
    --no-first-run --no-default-browser-check --disable-extensions --mute-audio
    --disable-background-networking --disable-component-update --disable-sync
    --enable-logging=stderr --v=0)
rm -f -- "$out"

if ! "$browser" "${flags[@]}" --screenshot="$out" --window-size=1400,1000 "$url" >"$work/shot.log" 2>&1; then
    cat "$work/shot.log" >&2
    die "$browser could not render $report (its output is above)"
fi
[[ -s $out ]] || { cat "$work/shot.log" >&2; die "$browser wrote no screenshot to $out"; }
head -c 8 -- "$out" | od -An -tx1 | tr -d ' \n' | grep -qx '89504e470d0a1a0a' || die "$out is not a PNG file"

if ! "$browser" "${flags[@]}" --dump-dom "$url" >"$work/dom.html" 2>"$work/dom.log"; then
    cat "$work/dom.log" >&2
    die "$browser could not load $report to dump its DOM"
fi
grep -q 'id="timeline"' "$work/dom.html" || die "$report has no timeline chart (no element with id=\"timeline\") in its DOM"
# The chart states how many lanes and inject markers it must show; count what the browser built.
want_lanes=$(grep -o 'data-lanes="[0-9]*"' "$work/dom.html" | head -n1 | tr -dc 0-9)
want_injects=$(grep -o 'data-injects="[0-9]*"' "$work/dom.html" | head -n1 | tr -dc 0-9)
lanes=$(grep -o 'class="lane"' "$work/dom.html" | wc -l)
injects=$(grep -o 'class="inject"' "$work/dom.html" | wc -l)
[[ -n $want_lanes && -n $want_injects ]] || die "$report: the timeline does not state its lanes and injects (data-lanes, data-injects)"
[[ $lanes -eq $want_lanes ]] || die "$report: the browser shows $lanes lanes, the report has $want_lanes participants"
[[ $injects -eq $want_injects ]] || die "$report: the browser shows $injects inject markers, the report has $want_injects injects"
# Page errors (a script error, a resource that failed to load) show in Chromium's console log.
if grep -E 'CONSOLE|Uncaught|Failed to load resource|net::ERR_' "$work/dom.log" "$work/shot.log" >"$work/errors" 2>/dev/null; then
    cat "$work/errors" >&2
    die "$report logged errors in the browser (above)"
fi
echo "render-report: $out written ($(wc -c <"$out") bytes); the timeline has $lanes lanes and $injects inject markers, as the report says"
