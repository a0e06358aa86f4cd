#!/usr/bin/env bash
# Usage: path.sh NAME
# Prints the absolute path of pinned tool NAME in the tool cache
# (${SMARTSCALE_CACHE:-$HOME/.cache/smartscale}/<component>-<version>/bin/NAME).
# Exits 1 with a hint if NAME is unknown or not installed yet.
# NAME is one of: dynalite prometheus promtool alertmanager amtool etcd
# kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
# kwok-stages kube-state-metrics helm golangci-lint.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ $# -ne 1 ]; then
	echo "usage: $0 NAME" >&2
	exit 2
fi
if ! p="$(tool_path "$1")"; then
	echo "path.sh: unknown tool $1" >&2
	exit 1
fi
if [ ! -e "$p" ]; then
	echo "path.sh: $1 is not installed at $p; run 'make tools' (or bash e2e/tools/install.sh $(tool_component "$1"))" >&2
	exit 1
fi
echo "$p"
