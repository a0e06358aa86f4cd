package main

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"text/template"
)

//go:embed userdata/*.sh.tmpl
var userdataFS embed.FS

const (
	agentTemplate  = "userdata/k3s-agent.sh.tmpl"
	serverTemplate = "userdata/k3s-server.sh.tmpl"
	// masterRoleTag is the Role tag value workers find the master by.
	masterRoleTag = "k3s-master"
)

// bootstrap holds the values rendered into the user data scripts.
type bootstrap struct {
	Region                       string
	ClusterID                    string
	NodeGroup                    string
	TokenSecretID                string
	K3sVersion                   string
	MasterRoleTag                string
	ECRCredentialProviderVersion string
	LogGroup                     string
}

// shellSafe is what may stand inside the scripts' single quotes: ARNs,
// names, versions and paths, never a quote, space, '$' or newline.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9._:/+@=-]+$`)

// check refuses a value that could break out of its single quotes, so a
// rendered script is always the script that was linted.
func (b bootstrap) check() error {
	v := reflect.ValueOf(b)
	for i := range v.NumField() {
		name, val := v.Type().Field(i).Name, v.Field(i).String()
		if !shellSafe.MatchString(val) {
			return fmt.Errorf("user data value %s=%q: want non-empty [A-Za-z0-9._:/+@=-]", name, val)
		}
	}
	return nil
}

// renderUserData renders one of the embedded scripts.
func renderUserData(name string, b bootstrap) (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	t, err := template.New("").Option("missingkey=error").ParseFS(userdataFS, name)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.ExecuteTemplate(&out, path.Base(name), b); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return out.String(), nil
}
