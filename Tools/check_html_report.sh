#!/usr/bin/env bash
# Checks that a TinySeek HTML profile report (HTMLReport) is self-contained and renders in a
# real browser, and leaves a screenshot to look at.
#
#   Tools/check_html_report.sh REPORT.html [SCREENSHOT.png]
#
# 1. Static: no <script>, <link>, <iframe>, <object>, <embed>, @import or url(...), and no URL
#    other than the SVG namespace (the page must open offline, from a mail or a scratch disk).
# 2. Headless Chromium loads it with DNS disabled; fails on any console message (the page has
#    no scripts, so any message is an error) or if the rendered DOM has no <svg> chart.
# 3. Screenshot (default: REPORT.png next to the report; window size from $WINDOW, 1400,3000).
#
# Needs Chromium (Debian: apt-get install chromium) or Chrome; set $CHROMIUM to choose a binary.
# Exit status: 0 ok, 1 the report failed a check, 2 usage or environment problem.
# `swift test` never needs this script.
set -euo pipefail

die() { echo "check_html_report: $*" >&2; exit 2; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 REPORT.html [SCREENSHOT.png]"
report=$1
[[ -f $report && -r $report ]] || die "cannot read $report"
report=$(realpath "$report")
shot=$(realpath -m "${2:-${report%.html}.png}")

browser=${CHROMIUM:-}
if [[ -z $browser ]]; then
    for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$candidate" >/dev/null; then browser=$candidate; break; fi
    done
fi
[[ -n $browser ]] || die "no Chromium or Chrome found (Debian: apt-get install chromium; or set CHROMIUM)"

# 1. Static checks.
if grep -Eqi '<script|<link|<iframe|<object|<embed|@import|url\(' "$report"; then
    grep -Eoi '<script|<link|<iframe|<object|<embed|@import|url\(' "$report" | sort | uniq -c >&2
    fail "$report references scripts or external resources"
fi
urls=$(grep -Eo 'https?://[^"'"'"' )<>]+' "$report" | grep -vx 'http://www.w3.org/2000/svg' || true)
[[ -z $urls ]] || fail "$report contains URLs: $(echo "$urls" | sort -u | head -5 | tr '\n' ' ')"

# A throwaway browser profile; every host resolves to nothing, so a stray fetch cannot succeed.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
flags=(--headless --disable-gpu --no-sandbox --no-first-run --disable-extensions --disable-sync
       --disable-background-networking --disable-component-update --user-data-dir="$scratch/profile"
       "--host-resolver-rules=MAP * ~NOTFOUND")

# 2. Load, dump the DOM, collect console output.
if ! timeout 120 "$browser" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$report" \
        >"$scratch/dom.html" 2>"$scratch/console.log"; then
    tail -20 "$scratch/console.log" >&2
    fail "$browser could not load $report"
fi
if grep -E ':CONSOLE\(|:CONSOLE:|Uncaught' "$scratch/console.log" >&2; then
    fail "console messages while loading $report"
fi
grep -q '<svg' "$scratch/dom.html" || fail "the rendered page has no <svg> chart"

# 3. Screenshot.
mkdir -p "$(dirname "$shot")"
rm -f "$shot"
timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --window-size="${WINDOW:-1400,3000}" \
    --screenshot="$shot" "file://$report" >/dev/null 2>"$scratch/screenshot.log" || true
[[ -s $shot ]] || { tail -20 "$scratch/screenshot.log" >&2; fail "no screenshot written to $shot"; }

charts=$(grep -o '<svg' "$scratch/dom.html" | wc -l)
echo "ok: $report renders with $charts SVG charts, no console messages, no external references"
echo "screenshot: $shot"
