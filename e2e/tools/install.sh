#!/usr/bin/env bash
# Usage: install.sh [COMPONENT|TOOL ...]
#
# Builds the pinned external components the tests and the local stack run
# into ${SMARTSCALE_CACHE:-$HOME/.cache/smartscale}/<component>-<version>/,
# skipping whatever is already there (versions: versions.env). No argument
# means every component; an argument is a component (kube, prometheus, ...)
# or a binary it provides (promtool, kube-apiserver, ...).
#
# Each component is built in a scratch folder and renamed into place, under
# a per-component lock, so an interrupted or concurrent run never leaves a
# half-built component that looks installed. A warm run only checks files
# and takes well under a second per component.
#
# Needs: go (the version in go.mod), node + npm (dynalite), flock.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GOWORK=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
PROGRESS_EVERY="${SMARTSCALE_PROGRESS_EVERY:-30}"

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# module_dir MOD@VERSION: downloads a module and prints its (read-only)
# folder in the module cache.
module_dir() {
	local out
	out="$(cd "$CACHE" && go mod download -json "$1")"
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out"
}

# copy_module MOD@VERSION DEST: a writable copy of a module's source, for
# modules that do not build straight from the module cache.
copy_module() {
	local src
	src="$(module_dir "$1")"
	[ -n "$src" ] || { echo "cannot locate module $1" >&2; return 1; }
	mkdir -p "$2"
	cp -R "$src/." "$2/"
	chmod -R u+w "$2"
}

# common_version_ldflags VERSION: stamps github.com/prometheus/common/version
# so the binary reports its release instead of an empty version.
common_version_ldflags() {
	echo "-X github.com/prometheus/common/version.Version=${1#v} -X github.com/prometheus/common/version.Branch=release -X github.com/prometheus/common/version.BuildUser=smartscale"
}

build_dynalite() {
	local work="$1"
	cp "$TOOLS_DIR/package.json" "$TOOLS_DIR/package-lock.json" "$work/"
	(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
	mkdir -p "$work/bin"
	# The stack runs `node bin/dynalite` so the PID it holds is the server.
	ln -s ../node_modules/dynalite/cli.js "$work/bin/dynalite"
}

build_prometheus() {
	local work="$1" v
	v="$(component_version prometheus)"
	# Module v0.MNN.P is Prometheus M.NN.P (v0.316.0 = 3.16.0).
	local mnn="${v#v0.}"
	mnn="${mnn%%.*}"
	(cd "$work" && GOBIN="$work/bin" go install -v \
		-ldflags "$(common_version_ldflags "${mnn:0:1}.${mnn:1}.${v##*.}")" \
		"github.com/prometheus/prometheus/cmd/prometheus@$v" \
		"github.com/prometheus/prometheus/cmd/promtool@$v")
}

build_alertmanager() {
	local work="$1" v
	v="$(component_version alertmanager)"
	(cd "$work" && GOBIN="$work/bin" go install -v -ldflags "$(common_version_ldflags "$v")" \
		"github.com/prometheus/alertmanager/cmd/amtool@$v")
	# The module zip lacks the built web UI that ui/web.go embeds
	# (//go:embed app/dist); placeholders let it build. The API is unaffected.
	copy_module "github.com/prometheus/alertmanager@$v" "$work/src"
	mkdir -p "$work/src/ui/app/dist/elm" "$work/src/ui/app/dist/mantine"
	echo '<!doctype html><title>Alertmanager</title>' >"$work/src/ui/app/dist/elm/index.html"
	echo '<!doctype html><title>Alertmanager</title>' >"$work/src/ui/app/dist/mantine/index.html"
	(cd "$work/src" && go build -v -ldflags "$(common_version_ldflags "$v")" -o "$work/bin/alertmanager" ./cmd/alertmanager)
	rm -rf "$work/src"
}

build_etcd() {
	local work="$1"
	if ! grep -q "go.etcd.io/etcd/server/v3 $(component_version etcd)\$" "$TOOLS_DIR/etcd/go.mod"; then
		echo "e2e/tools/etcd/go.mod does not require etcd $(component_version etcd): update it (go get go.etcd.io/etcd/server/v3@$(component_version etcd) && go mod tidy there)" >&2
		return 1
	fi
	(cd "$TOOLS_DIR/etcd" && go build -v -o "$work/bin/etcd" .)
}

build_kube() {
	local work="$1" v minor
	v="$(component_version kube)"
	if ! grep -q "^require k8s.io/kubernetes $v\$" "$TOOLS_DIR/kube/go.mod"; then
		echo "e2e/tools/kube/go.mod does not require k8s.io/kubernetes $v: run e2e/tools/kube/gen.sh" >&2
		return 1
	fi
	minor="${v#v1.}"
	minor="${minor%%.*}"
	local pkg=k8s.io/component-base/version
	mkdir -p "$work/bin"
	(cd "$TOOLS_DIR/kube" && go build -v -o "$work/bin/" \
		-ldflags "-X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl)
}

build_kwok() {
	local work="$1" v src f first=1
	v="$(component_version kwok)"
	(cd "$work" && GOBIN="$work/bin" go install -v "sigs.k8s.io/kwok/cmd/kwok@$v")
	# kwok ships no built-in stages and exits without any: take the fast
	# node/pod lifecycles plus lease heartbeats from its own kustomize tree.
	src="$(module_dir "sigs.k8s.io/kwok@$v")/kustomize/stage"
	mkdir -p "$work/share"
	for f in node/fast/node-initialize.yaml \
		node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		[ $first = 1 ] || echo '---' >>"$work/share/stages.yaml"
		first=0
		cat "$src/$f" >>"$work/share/stages.yaml"
	done
}

build_kube-state-metrics() {
	local work="$1" v
	v="$(component_version kube-state-metrics)"
	# The proxy refuses the module's version list, so `go install @v` fails
	# although the version itself is served: build from a copy instead.
	copy_module "k8s.io/kube-state-metrics/v2@$v" "$work/src"
	(cd "$work/src" && go build -v -ldflags "$(common_version_ldflags "$v")" -o "$work/bin/kube-state-metrics" .)
	rm -rf "$work/src"
}

build_helm() {
	local work="$1" v
	v="$(component_version helm)"
	(cd "$work" && GOBIN="$work/bin" go install -v \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$v" "helm.sh/helm/v3/cmd/helm@$v")
}

build_golangci-lint() {
	local work="$1" v
	v="$(component_version golangci-lint)"
	(cd "$work" && GOBIN="$work/bin" go install -v \
		"github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$v")
}

# install_component COMP: builds COMP unless present; sets ELAPSED (s) and
# STATUS (cached | built | waited: another run built it meanwhile).
install_component() {
	local comp="$1" dir work buildlog pid start ticker rc=0
	dir="$(component_dir "$comp")"
	STATUS=cached
	ELAPSED=0
	component_installed "$comp" && return 0

	mkdir -p "$CACHE/.locks"
	exec {lockfd}>"$CACHE/.locks/$comp.lock"
	start=$SECONDS
	if ! flock -n "$lockfd"; then
		log "$comp: another install is building it; waiting"
		flock "$lockfd"
	fi
	if component_installed "$comp"; then
		exec {lockfd}>&-
		ELAPSED=$((SECONDS - start))
		STATUS=waited
		return 0
	fi

	work="$CACHE/.build-$comp-$$"
	rm -rf "$work"
	mkdir -p "$work"
	buildlog="$CACHE/.locks/$comp.build.log"
	log "$comp $(component_version "$comp"): building (log: $buildlog)"
	"build_$comp" "$work" >"$buildlog" 2>&1 &
	pid=$!
	# Progress for long builds: elapsed time and packages compiled so far
	# (go -v prints one line per package it builds).
	(
		while sleep "$PROGRESS_EVERY"; do
			log "$comp: still building, $((SECONDS - start)) s, $(grep -cv '^go: downloading' "$buildlog" 2>/dev/null || echo 0) packages so far"
		done
	) &
	ticker=$!
	wait "$pid" || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	if [ "$rc" -ne 0 ]; then
		log "$comp: FAILED after $((SECONDS - start)) s; last lines of $buildlog:"
		tail -n 30 "$buildlog" >&2
		rm -rf "$work"
		exec {lockfd}>&-
		return "$rc"
	fi
	rm -rf "$dir"
	mv "$work" "$dir"
	exec {lockfd}>&-
	if ! component_installed "$comp"; then
		log "$comp: build finished but $(component_files "$comp") missing in $dir" >&2
		return 1
	fi
	ELAPSED=$((SECONDS - start))
	STATUS=built
	log "$comp: built in ${ELAPSED} s"
}

main() {
	local want=() arg comp total_start=$SECONDS summary=()
	if [ $# -eq 0 ]; then
		want=("${COMPONENTS[@]}")
	else
		for arg in "$@"; do
			if component_version "$arg" >/dev/null 2>&1; then
				want+=("$arg")
			elif comp="$(tool_component "$arg")"; then
				want+=("$comp")
			else
				echo "install.sh: unknown component or tool: $arg (components: ${COMPONENTS[*]})" >&2
				exit 2
			fi
		done
	fi
	mkdir -p "$CACHE"
	for comp in "${want[@]}"; do
		install_component "$comp"
		summary+=("$(printf '%-20s %-10s %-7s %5d s' "$comp" "$(component_version "$comp")" "$STATUS" "$ELAPSED")")
	done
	log "tool cache: $CACHE"
	printf '  %s\n' "${summary[@]}"
	log "done in $((SECONDS - total_start)) s"
}

main "$@"
