// Package buildinfo reports what binary is running.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version is stamped at build time:
// -ldflags "-X github.com/smartscale/smartscale/internal/buildinfo.version=v1.2.3".
var version = "dev"

// Info identifies a build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"goVersion"`
}

// Get returns the running binary's build information.
func Get() Info {
	info := Info{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Revision = s.Value
			}
		}
	}
	return info
}
