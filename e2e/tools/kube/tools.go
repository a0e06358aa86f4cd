//go:build tools

// Package kube pins the Kubernetes control plane (kube-apiserver,
// kube-controller-manager, kube-scheduler) and kubectl for the SmartScale
// local stack. k8s.io/kubernetes is not meant to be required as a module:
// its staging modules are declared at v0.0.0, so go.mod carries a replace
// for each (regenerate with gen.sh when KUBE_VERSION changes).
// e2e/tools/install.sh builds the four commands with the version stamped.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
