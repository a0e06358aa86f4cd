#!/usr/bin/env bash
# Infra checks for `make test` (run as `bash infra/test.sh` from the repo root):
# runs shellcheck on the user-data templates (valid shell as they stand: every
# rendered value sits in single quotes), then the Pulumi unit tests, which run
# the real program against pulumi.WithMocks - no pulumi CLI, no AWS account.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v shellcheck >/dev/null 2>&1; then
	echo "infra/test.sh: installing shellcheck (Debian package)" >&2
	sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y shellcheck; then
		"${sudo[@]}" apt-get update
		"${sudo[@]}" apt-get install -y shellcheck
	fi
fi

shellcheck --version | sed -n 2p
shellcheck --shell=bash userdata/*.sh.tmpl test.sh
echo "infra/test.sh: shellcheck passed on $(echo userdata/*.sh.tmpl) test.sh"

# The tests render the templates and run them (bash -n, shellcheck, and a
# boot against stand-in commands); this makes a missing shellcheck a failure.
SMARTSCALE_REQUIRE_SHELLCHECK=1 go test -count=1 ./...
