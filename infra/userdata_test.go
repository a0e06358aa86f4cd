package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleBootstrap() bootstrap {
	return bootstrap{
		Region:                       "us-east-1",
		ClusterID:                    "prod",
		NodeGroup:                    "workers",
		TokenSecretID:                "arn:aws:secretsmanager:us-east-1:123456789012:secret:smartscale/prod/k3s-token-AbCdEf",
		K3sVersion:                   defaultK3sVersion,
		MasterRoleTag:                masterRoleTag,
		ECRCredentialProviderVersion: defaultECRCredential,
		LogGroup:                     "/smartscale/prod",
	}
}

// renderTo renders a template into a file in dir and returns its path.
func renderTo(t *testing.T, dir, name string, b bootstrap) string {
	t.Helper()
	script, err := renderUserData(name, b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(strings.TrimSuffix(name, ".tmpl")))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUserDataRendersToValidShell(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{agentTemplate, serverTemplate} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			path := renderTo(t, dir, name, sampleBootstrap())
			raw, _ := os.ReadFile(path)
			if strings.Contains(string(raw), "{{") || !strings.Contains(string(raw), "REGION='us-east-1'") {
				t.Fatalf("not rendered:\n%.400s", raw)
			}
			if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
				t.Fatalf("bash -n: %v\n%s", err, out)
			}
			shellcheck, err := exec.LookPath("shellcheck")
			if err != nil {
				if os.Getenv("SMARTSCALE_REQUIRE_SHELLCHECK") != "" {
					t.Fatal("shellcheck not installed (infra/test.sh installs it)")
				}
				t.Skip("shellcheck not installed; infra/test.sh installs it and runs this with SMARTSCALE_REQUIRE_SHELLCHECK=1")
			}
			if out, err := exec.Command(shellcheck, "--shell=bash", path).CombinedOutput(); err != nil {
				t.Fatalf("shellcheck: %v\n%s", err, out)
			}
		})
	}
}

func TestUserDataRefusesUnsafeValues(t *testing.T) {
	for _, bad := range []string{"it's", "a b", "$(reboot)", "x\ny", "`id`", ""} {
		b := sampleBootstrap()
		b.NodeGroup = bad
		if _, err := renderUserData(agentTemplate, b); err == nil || !strings.Contains(err.Error(), "NodeGroup") {
			t.Errorf("NodeGroup=%q: err = %v, want a refusal naming the field", bad, err)
		}
	}
}

// Stand-ins for the commands the bootstrap scripts call on a node. They
// answer like the real ones (IMDSv2 only with a session token, the AWS CLI's
// text output) and record what they were asked in $STATE.
var fakes = map[string]string{
	"curl": `#!/usr/bin/env bash
out="" url="" method=GET token=""
while (($#)); do
	case "$1" in
	-o) out=$2; shift 2 ;;
	-X) method=$2; shift 2 ;;
	-H) [[ "$2" == X-aws-ec2-metadata-token:* ]] && token=${2#*: }; shift 2 ;;
	--max-time) shift 2 ;;
	-*) shift ;;
	*) url=$1; shift ;;
	esac
done
echo "$method $url" >>"$STATE/curl.log"
case "$url" in
http://169.254.169.254/latest/api/token)
	[[ "$method" == PUT ]] || exit 22
	echo imds-session ;;
http://169.254.169.254/latest/meta-data/*)
	[[ "$token" == imds-session ]] || { echo "401 Unauthorized" >&2; exit 22; }
	case "${url#*/meta-data/}" in
	instance-id) echo i-0123456789abcdef0 ;;
	placement/availability-zone) echo us-east-1b ;;
	instance-type) echo t3.small ;;
	instance-life-cycle) echo "${FAKE_LIFECYCLE:-spot}" ;;
	local-ipv4) echo 10.40.128.10 ;;
	*) exit 22 ;;
	esac ;;
https://10.40.128.10:6443/ping) echo pong ;;
https://get.k3s.io)
	cat >"$out" <<'SH'
#!/usr/bin/env bash
{ env | grep -E '^(K3S_|INSTALL_K3S_)' | sort; printf 'ARG %s\n' "$@"; } >"$STATE/installer.log"
SH
	;;
https://artifacts.k8s.io/*) echo binary >"$out" ;;
*) echo "curl: (6) Could not resolve host in $url" >&2; exit 6 ;;
esac
`,
	"aws": `#!/usr/bin/env bash
echo "$*" >>"$STATE/aws.log"
case "$1 $2" in
"secretsmanager get-secret-value")
	if [[ -n "${FAKE_SECRET_FAIL:-}" ]]; then
		echo "An error occurred (AccessDeniedException) when calling the GetSecretValue operation" >&2
		exit 254
	fi
	echo "$FAKE_TOKEN" ;;
"ec2 describe-instances")
	n=$(cat "$STATE/describe" 2>/dev/null || echo 0)
	echo $((n + 1)) >"$STATE/describe"
	if ((n < ${FAKE_MASTER_MISSING:-0})); then echo None; else echo 10.40.128.10; fi ;;
*) exit 2 ;;
esac
`,
	"sleep":      "#!/usr/bin/env bash\necho \"$1\" >>\"$STATE/sleep.log\"\n",
	"systemctl":  "#!/usr/bin/env bash\necho \"$*\" >>\"$STATE/systemctl.log\"\n",
	"journalctl": "#!/usr/bin/env bash\necho 'k3s-agent[1]: level=fatal msg=\"fake journal\"'\n",
	"k3s":        "#!/usr/bin/env bash\necho \"$*\" >>\"$STATE/k3s.log\"\n",
	"dnf": `#!/usr/bin/env bash
ctl="$SMARTSCALE_ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
mkdir -p "$(dirname "$ctl")"
printf '#!/usr/bin/env bash\necho "$*" >>"$STATE/cwagent.log"\n' >"$ctl"
chmod +x "$ctl"
`,
}

const fakeToken = "K10fakeclustertoken0123456789"

type bootRun struct {
	exitErr error
	console string
	state   string
	root    string
}

func (b bootRun) file(name string) string {
	raw, _ := os.ReadFile(filepath.Join(b.state, name))
	return string(raw)
}

// runBootstrap runs a rendered script against the stand-in commands in a
// scratch root, as cloud-init would run it on a node.
func runBootstrap(t *testing.T, name string, env ...string) bootRun {
	t.Helper()
	dir := t.TempDir()
	bin, state, root := filepath.Join(dir, "bin"), filepath.Join(dir, "state"), filepath.Join(dir, "root")
	for _, d := range []string{bin, state, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for cmd, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, cmd), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := renderTo(t, dir, name, sampleBootstrap())
	console := filepath.Join(dir, "console")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append([]string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"HOME=" + dir,
		"STATE=" + state,
		"SMARTSCALE_ROOT=" + root,
		"SMARTSCALE_CONSOLE=" + console,
		"FAKE_TOKEN=" + fakeToken,
	}, env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run() // returns once tee, holding stderr, has flushed the console too
	raw, _ := os.ReadFile(console)
	r := bootRun{exitErr: err, console: string(raw), state: state, root: root}
	if strings.Contains(r.console, fakeToken) || strings.Contains(stderr.String(), fakeToken) {
		t.Error("the K3s token was written to the console log")
	}
	return r
}

// installerArgs returns the installer's arguments and the --node-label values.
func installerArgs(log string) (args []string, labels map[string]string) {
	labels = map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if a, ok := strings.CutPrefix(line, "ARG "); ok {
			args = append(args, a)
		}
	}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--node-label" {
			k, v, _ := strings.Cut(args[i+1], "=")
			labels[k] = v
		}
	}
	return args, labels
}

func TestAgentBootstrapJoinsWithSmartScaleLabels(t *testing.T) {
	for _, market := range []string{"spot", "on-demand"} {
		t.Run(market, func(t *testing.T) {
			r := runBootstrap(t, agentTemplate, "FAKE_LIFECYCLE="+market, "FAKE_MASTER_MISSING=2")
			if r.exitErr != nil {
				t.Fatalf("bootstrap failed: %v\n%s", r.exitErr, r.console)
			}
			inst := r.file("installer.log")
			for _, want := range []string{
				"K3S_URL=https://10.40.128.10:6443", "K3S_TOKEN=" + fakeToken,
				"INSTALL_K3S_VERSION=" + defaultK3sVersion, "INSTALL_K3S_SKIP_START=true",
			} {
				if !strings.Contains(inst, want+"\n") {
					t.Errorf("installer environment lacks %s:\n%s", want, inst)
				}
			}
			args, labels := installerArgs(inst)
			if len(args) == 0 || args[0] != "agent" {
				t.Fatalf("installer args = %v, want agent first", args)
			}
			want := map[string]string{
				"topology.kubernetes.io/region":    "us-east-1",
				"topology.kubernetes.io/zone":      "us-east-1b",
				"node.kubernetes.io/instance-type": "t3.small",
				"smartscale.io/market":             market,
				"smartscale.io/nodegroup":          "workers",
			}
			for k, v := range want {
				if labels[k] != v {
					t.Errorf("label %s = %q, want %q (all: %v)", k, labels[k], v, labels)
				}
			}
			if !slices.Contains(args, "provider-id=aws:///us-east-1b/i-0123456789abcdef0") {
				t.Errorf("no provider id in %v", args)
			}
			if !slices.Contains(args, "image-credential-provider-config="+filepath.Join(r.root, "var/lib/rancher/credentialprovider/config.yaml")) {
				t.Errorf("ECR credential provider not configured: %v", args)
			}
			// The master was not there twice: two retries, 2 s then 4 s.
			if got := strings.Fields(r.file("sleep.log")); !slices.Equal(got, []string{"2", "4"}) {
				t.Errorf("sleeps = %v, want the backoff 2 4 while the master is missing", got)
			}
			if aws := r.file("aws.log"); !strings.Contains(aws, "Name=tag:Role,Values=k3s-master") ||
				!strings.Contains(aws, "Name=tag:smartscale/cluster,Values=prod") {
				t.Errorf("master lookup = %s, want by Role and cluster tags", aws)
			}
			if sc := r.file("systemctl.log"); !strings.Contains(sc, "enable --now --no-block k3s-agent") {
				t.Errorf("systemctl calls = %s", sc)
			}
			if !strings.Contains(r.file("cwagent.log"), "fetch-config") {
				t.Error("the CloudWatch agent was not started")
			}
			cw, _ := os.ReadFile(filepath.Join(r.root, "opt/aws/amazon-cloudwatch-agent/etc/smartscale.json"))
			if !strings.Contains(string(cw), `"log_group_name": "/smartscale/prod"`) {
				t.Errorf("CloudWatch agent config = %s", cw)
			}
			if !strings.Contains(r.console, "joined cluster prod as workers/"+market+" in us-east-1b") {
				t.Errorf("console log lacks the join line:\n%s", r.console)
			}
		})
	}
}

func TestAgentBootstrapFailsLoudlyAfterBackoff(t *testing.T) {
	r := runBootstrap(t, agentTemplate, "FAKE_SECRET_FAIL=1")
	if r.exitErr == nil {
		t.Fatal("bootstrap succeeded without a token")
	}
	if !strings.Contains(r.console, "FATAL: cannot read the K3s token from Secrets Manager") {
		t.Errorf("console log does not say why:\n%s", r.console)
	}
	if !strings.Contains(r.console, "AccessDeniedException") {
		t.Errorf("console log hides the AWS error:\n%s", r.console)
	}
	// 8 attempts: 7 waits, doubling from 2 s and capped at 60 s.
	if got := strings.Fields(r.file("sleep.log")); !slices.Equal(got, []string{"2", "4", "8", "16", "32", "60", "60"}) {
		t.Errorf("sleeps = %v, want 2 4 8 16 32 60 60", got)
	}
	if r.file("installer.log") != "" {
		t.Error("the installer ran without a token")
	}
}

func TestServerBootstrap(t *testing.T) {
	r := runBootstrap(t, serverTemplate)
	if r.exitErr != nil {
		t.Fatalf("bootstrap failed: %v\n%s", r.exitErr, r.console)
	}
	inst := r.file("installer.log")
	if !strings.Contains(inst, "K3S_TOKEN="+fakeToken+"\n") || strings.Contains(inst, "K3S_URL=") {
		t.Errorf("installer environment = %s, want the token and no server URL", inst)
	}
	args, labels := installerArgs(inst)
	for _, want := range []string{"server", "--disable-cloud-controller", "--secrets-encryption", "10.40.128.10",
		"node-role.kubernetes.io/control-plane=true:NoSchedule", "provider-id=aws:///us-east-1b/i-0123456789abcdef0"} {
		if !slices.Contains(args, want) {
			t.Errorf("server args lack %q: %v", want, args)
		}
	}
	if labels["node.kubernetes.io/instance-type"] != "t3.small" || labels["smartscale.io/nodegroup"] != "" {
		t.Errorf("master labels = %v, want its instance type and no node group", labels)
	}
	if !strings.Contains(r.file("k3s.log"), "kubectl get --raw /readyz") || !strings.Contains(r.console, "K3s server ready") {
		t.Errorf("server readiness not awaited:\n%s", r.console)
	}
}
