// Command etcd is the etcd server, pinned for the SmartScale local stack.
//
// etcd publishes no installable main package at a module path the Go proxy
// serves, so this module wraps etcdmain.Main; e2e/tools/install.sh builds it
// into the tool cache. kube-apiserver v1.37 speaks the etcd 3.7 client.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
