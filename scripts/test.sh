#!/usr/bin/env bash
# The whole test suite: formatting, vet, and every test with the race
# detector, including the interop tests against real peers (Prosody,
# SIPp, baresip, Kamailio, dnsmasq...). On a machine where those Debian
# packages are missing it installs them when run as root; otherwise the
# tests that need them skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

missing=()
for p in $(grep -v '^#' .ci/debian-packages); do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) == 0 ]]; then
		echo "installing missing Debian packages: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
	else
		echo "warning: missing Debian packages (run as root to install): ${missing[*]}" >&2
	fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then
	echo "gofmt: these files are not formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 60m ./...
