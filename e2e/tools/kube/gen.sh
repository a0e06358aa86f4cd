#!/usr/bin/env bash
# Regenerates go.mod/go.sum of this module for KUBE_VERSION in ../versions.env:
# requires k8s.io/kubernetes at that version and replaces each of its staging
# modules (declared there as v0.0.0) with the matching v0.X.Y release.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source-path=SCRIPTDIR source=../versions.env
source ../versions.env
staging="v0.${KUBE_VERSION#v1.}"
go mod download k8s.io/kubernetes@"$KUBE_VERSION"
kmod="$(go env GOMODCACHE)/k8s.io/kubernetes@${KUBE_VERSION}/go.mod"
{
	echo "module github.com/smartscale/smartscale/e2e/tools/kube"
	echo
	echo "go 1.26.0"
	echo
	echo "godebug default=go1.26"
	echo
	echo "require k8s.io/kubernetes ${KUBE_VERSION}"
	echo
	echo "replace ("
	grep -E '^\s+k8s.io/[a-z-]+ v0.0.0$' "$kmod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
	echo ")"
} >go.mod
rm -f go.sum
go mod tidy -e
