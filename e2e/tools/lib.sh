# shellcheck shell=bash
# Shared by install.sh and path.sh: where each pinned component lives in the
# tool cache and which binaries it provides. The Go package e2e/stack mirrors
# this table (stack.ToolPath); its tests compare the two.

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$TOOLS_DIR/versions.env"
CACHE="${SMARTSCALE_CACHE:-$HOME/.cache/smartscale}"

# Components in build order: what other work waits on first, the long
# control-plane build in the middle, lint last.
# shellcheck disable=SC2034 # read by install.sh
COMPONENTS=(dynalite prometheus alertmanager etcd kube kwok kube-state-metrics helm golangci-lint)

component_version() {
	case "$1" in
	dynalite) echo "$DYNALITE_VERSION" ;;
	prometheus) echo "$PROMETHEUS_VERSION" ;;
	alertmanager) echo "$ALERTMANAGER_VERSION" ;;
	etcd) echo "$ETCD_VERSION" ;;
	kube) echo "$KUBE_VERSION" ;;
	kwok) echo "$KWOK_VERSION" ;;
	kube-state-metrics) echo "$KUBE_STATE_METRICS_VERSION" ;;
	helm) echo "$HELM_VERSION" ;;
	golangci-lint) echo "$GOLANGCI_LINT_VERSION" ;;
	*) return 1 ;;
	esac
}

# Files (relative to the component folder) whose presence means the
# component is installed. Components are built in a scratch folder and
# renamed into place, so presence implies a finished build.
component_files() {
	case "$1" in
	dynalite) echo "bin/dynalite" ;;
	prometheus) echo "bin/prometheus bin/promtool" ;;
	alertmanager) echo "bin/alertmanager bin/amtool" ;;
	etcd) echo "bin/etcd" ;;
	kube) echo "bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler bin/kubectl" ;;
	kwok) echo "bin/kwok share/stages.yaml" ;;
	kube-state-metrics) echo "bin/kube-state-metrics" ;;
	helm) echo "bin/helm" ;;
	golangci-lint) echo "bin/golangci-lint" ;;
	*) return 1 ;;
	esac
}

# tool_component NAME: the component that provides binary (or file) NAME.
tool_component() {
	case "$1" in
	dynalite) echo dynalite ;;
	prometheus | promtool) echo prometheus ;;
	alertmanager | amtool) echo alertmanager ;;
	etcd) echo etcd ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo kube ;;
	kwok | kwok-stages) echo kwok ;;
	kube-state-metrics) echo kube-state-metrics ;;
	helm) echo helm ;;
	golangci-lint) echo golangci-lint ;;
	*) return 1 ;;
	esac
}

component_dir() {
	echo "$CACHE/$1-$(component_version "$1")"
}

# tool_path NAME: absolute path of binary (or file) NAME in the cache.
tool_path() {
	local comp
	comp="$(tool_component "$1")" || return 1
	if [ "$1" = kwok-stages ]; then
		echo "$(component_dir "$comp")/share/stages.yaml"
	else
		echo "$(component_dir "$comp")/bin/$1"
	fi
}

component_installed() {
	local dir f
	dir="$(component_dir "$1")"
	for f in $(component_files "$1"); do
		[ -e "$dir/$f" ] || return 1
	done
}
