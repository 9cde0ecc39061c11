#!/usr/bin/env bash
# Sourced by the scripts that drive headless Chromium (render-report.sh, check-dashboard.sh).
# shellcheck disable=SC2034  # `browser` is for the caller
# ensure_chromium: sets `browser` to a Chromium or Chrome on PATH, installing Debian's chromium
# package when none is there and we are root. Needs the caller's `die MESSAGE [CODE]`.

find_browser() {
    local b
    for b in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$b" >/dev/null 2>&1; then
            command -v "$b"
            return 0
        fi
    done
    return 1
}

ensure_chromium() {
    local who=$1
    if browser=$(find_browser); then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        die "no chromium, chromium-browser or google-chrome on PATH, and installing one needs root: \
run \`sudo apt-get install -y --no-install-recommends chromium\` (or run this script as root)" 2
    fi
    command -v apt-get >/dev/null 2>&1 || die "no chromium on PATH and no apt-get to install it: install Chromium or Chrome" 2
    echo "$who: installing chromium from the Debian packages" >&2
    apt-get update -qq || die "apt-get update failed: check the network and the apt sources" 2
    apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || die "apt-get install chromium failed: check the apt sources (Debian's package is 'chromium')" 2
    browser=$(find_browser) || die "chromium was installed but is not on PATH" 2
}
