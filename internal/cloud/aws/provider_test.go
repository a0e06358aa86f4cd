package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartscale/smartscale/internal/cloud"
)

const (
	templateID = "lt-0a1b2c3d4e5f60718"
	subnetA    = "subnet-0aaa1111bbbb2222c"
	subnetB    = "subnet-0ddd3333eeee4444f"
)

var launchTime = time.Date(2026, 3, 2, 9, 14, 27, 0, time.UTC)

type harness struct {
	fake *fakeEC2
	p    *Provider
	reg  *prometheus.Registry
	logs *syncBuffer
}

func newHarness(t *testing.T) harness {
	t.Helper()
	fake, client := newFakeEC2(t)
	logger, logs := logBuffer()
	reg := prometheus.NewRegistry()
	p, err := New(client, Options{
		LaunchTemplateID: templateID,
		Subnets:          map[string]string{"us-east-1a": subnetA, "us-east-1b": subnetB},
		Project:          "demo",
		Logger:           logger,
		Registerer:       reg,
		Now:              func() time.Time { return launchTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	return harness{fake: fake, p: p, reg: reg, logs: logs}
}

// twoSpotOneOnDemand is the acceptance plan: one spot node per zone and one
// on-demand node in us-east-1a.
func twoSpotOneOnDemand() cloud.CreateRequest {
	return cloud.CreateRequest{
		Group: "workers",
		Launches: []cloud.Launch{
			{Zone: "us-east-1b", Market: cloud.Spot, Count: 1},
			{Zone: "us-east-1a", Market: cloud.Spot, Count: 1},
			{Zone: "us-east-1a", Market: cloud.OnDemand, Count: 1},
		},
		InstanceTypes: []string{"t3.small", "t3a.small"},
		ClientToken:   "op-01JNBK7Z3Q",
	}
}

// values builds url.Values from key, value pairs.
func values(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// merge returns a copy of base with every key of more set.
func merge(base url.Values, more ...url.Values) url.Values {
	out := url.Values{}
	for k, v := range base {
		out[k] = slices.Clone(v)
	}
	for _, m := range more {
		for k, v := range m {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// assertForm compares every form value sent with want, key by key.
func assertForm(t *testing.T, got, want url.Values) {
	t.Helper()
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Equal(got[k], want[k]) {
			diffs = append(diffs, fmt.Sprintf("  %s: got %q, want %q", k, got[k], want[k]))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("request parameters differ:\n%s", strings.Join(diffs, "\n"))
	}
}

// overrides lists the (subnet, type) pairs in priority order.
func overrides(pairs ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(pairs); i += 2 {
		n := i/2 + 1
		p := fmt.Sprintf("LaunchTemplateConfigs.1.Overrides.%d.", n)
		v.Set(p+"SubnetId", pairs[i])
		v.Set(p+"InstanceType", pairs[i+1])
		v.Set(p+"Priority", fmt.Sprint(n-1))
	}
	return v
}

// tagSpecs is the TagSpecification block for instance and volume.
func tagSpecs(group, market string) url.Values {
	tags := [][2]string{{"Project", "demo"}, {"ManagedBy", "smartscale"}, {"ScalingGroup", group}, {"Name", "smartscale-" + group}}
	if market != "" {
		tags = append(tags, [2]string{"smartscale/market", market})
	}
	v := url.Values{}
	for i, rt := range []string{"instance", "volume"} {
		p := fmt.Sprintf("TagSpecification.%d.", i+1)
		v.Set(p+"ResourceType", rt)
		for j, tg := range tags {
			v.Set(fmt.Sprintf("%sTag.%d.Key", p, j+1), tg[0])
			v.Set(fmt.Sprintf("%sTag.%d.Value", p, j+1), tg[1])
		}
	}
	return v
}

func fleetBase(token string) url.Values {
	return values(
		"Action", "CreateFleet",
		"Version", "2016-11-15",
		"Type", "instant",
		"ClientToken", token,
		"LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId", templateID,
		"LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version", "$Latest",
	)
}

func TestCreateTwoSpotOneOnDemandIsOneFleetRequest(t *testing.T) {
	h := newHarness(t)
	h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-2spot-1od.xml"))

	res, err := h.p.Create(context.Background(), twoSpotOneOnDemand())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := h.fake.actions(); !slices.Equal(got, []string{"CreateFleet"}) {
		t.Fatalf("requests = %v, want exactly one CreateFleet", got)
	}
	// us-east-1a first: it is where the plan puts the on-demand node, so
	// prioritized on-demand tries it first; within a zone, the type order.
	assertForm(t, h.fake.call(0).Form, merge(fleetBase("op-01JNBK7Z3Q"),
		overrides(subnetA, "t3.small", subnetA, "t3a.small", subnetB, "t3.small", subnetB, "t3a.small"),
		values(
			"TargetCapacitySpecification.TotalTargetCapacity", "3",
			"TargetCapacitySpecification.SpotTargetCapacity", "2",
			"TargetCapacitySpecification.OnDemandTargetCapacity", "1",
			"TargetCapacitySpecification.DefaultTargetCapacityType", "spot",
			"SpotOptions.AllocationStrategy", "price-capacity-optimized",
			"OnDemandOptions.AllocationStrategy", "prioritized",
		),
		// A mixed request cannot tag each instance with its own market.
		tagSpecs("workers", ""),
	))

	want := []cloud.Instance{
		{ID: "i-0f3e2d1c0b9a80001", Group: "workers", ProviderID: "aws:///us-east-1a/i-0f3e2d1c0b9a80001", Zone: "us-east-1a", Market: cloud.Spot, Type: "t3a.small", LaunchTime: launchTime, State: cloud.Pending},
		{ID: "i-0f3e2d1c0b9a80002", Group: "workers", ProviderID: "aws:///us-east-1b/i-0f3e2d1c0b9a80002", Zone: "us-east-1b", Market: cloud.Spot, Type: "t3.small", LaunchTime: launchTime, State: cloud.Pending},
		{ID: "i-0f3e2d1c0b9a80003", Group: "workers", ProviderID: "aws:///us-east-1a/i-0f3e2d1c0b9a80003", Zone: "us-east-1a", Market: cloud.OnDemand, Type: "t3.small", LaunchTime: launchTime, State: cloud.Pending},
	}
	if !slices.Equal(res.Instances, want) {
		t.Errorf("instances:\n got %+v\nwant %+v", res.Instances, want)
	}
	if len(res.Fallback) != 0 || len(res.Errors) != 0 || res.Requested != 3 || res.Shortfall() != 0 {
		t.Errorf("result = %+v, want 3 requested, no fallback, no errors", res)
	}
	if got := testutil.ToFloat64(h.p.metrics.launched.WithLabelValues("spot", "planned")); got != 2 {
		t.Errorf("launched spot planned = %v, want 2", got)
	}
}

func TestCreateSingleMarketTagsTheMarket(t *testing.T) {
	h := newHarness(t)
	h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-fallback-1od.xml"))
	req := cloud.CreateRequest{
		Group:         "workers",
		Launches:      []cloud.Launch{{Zone: "us-east-1b", Market: cloud.OnDemand, Count: 1}},
		InstanceTypes: []string{"t3.small", "t3a.small"},
		ClientToken:   "op-2",
	}
	if _, err := h.p.Create(context.Background(), req); err != nil {
		t.Fatalf("Create: %v", err)
	}
	assertForm(t, h.fake.call(0).Form, merge(fleetBase("op-2"),
		overrides(subnetB, "t3.small", subnetB, "t3a.small"),
		values(
			"TargetCapacitySpecification.TotalTargetCapacity", "1",
			"TargetCapacitySpecification.OnDemandTargetCapacity", "1",
			"TargetCapacitySpecification.DefaultTargetCapacityType", "on-demand",
			"OnDemandOptions.AllocationStrategy", "prioritized",
		),
		tagSpecs("workers", "on-demand"),
	))
}

// capacityMessages are the messages EC2 sends with each capacity code.
var capacityMessages = map[string]string{
	"InsufficientInstanceCapacity":      "We currently do not have sufficient t3.small capacity in the Availability Zone you requested (us-east-1b). Our system will be working on provisioning additional capacity. You can currently get t3.small capacity by not specifying an Availability Zone in your request or choosing us-east-1a, us-east-1c, us-east-1d, us-east-1f.",
	"SpotMaxPriceTooLow":                "Your Spot request price of 0.0050 is lower than the minimum required Spot request fulfillment price of 0.0079.",
	"MaxSpotInstanceCountExceeded":      "Max spot instance count exceeded",
	"UnfulfillableCapacity":             "Unable to fulfill capacity due to your request configuration. Please adjust your request and try again.",
	"InsufficientFreeAddressesInSubnet": "There are not enough free addresses in subnet 'subnet-0ddd3333eeee4444f' to satisfy the requested number of instances.",
}

func TestCreateSpotShortfallFallsBackToOnDemandForExactlyTheShortfall(t *testing.T) {
	for _, code := range cloud.CapacityCodes() {
		t.Run(code, func(t *testing.T) {
			h := newHarness(t)
			// The plan's spot node in us-east-1b fails; the one in 1a and the
			// on-demand node launch.
			h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-spot-partial.xml.tmpl",
				map[string]string{"Code": code, "Message": capacityMessages[code]}))
			h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-fallback-1od.xml"))

			res, err := h.p.Create(context.Background(), twoSpotOneOnDemand())
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got := h.fake.actions(); !slices.Equal(got, []string{"CreateFleet", "CreateFleet"}) {
				t.Fatalf("requests = %v, want the plan then one follow-up", got)
			}
			// The follow-up: on-demand only, for the one missing node, the
			// zone it is missing from first, with its own idempotency token.
			assertForm(t, h.fake.call(1).Form, merge(fleetBase("op-01JNBK7Z3Q-od"),
				overrides(subnetB, "t3.small", subnetB, "t3a.small", subnetA, "t3.small", subnetA, "t3a.small"),
				values(
					"TargetCapacitySpecification.TotalTargetCapacity", "1",
					"TargetCapacitySpecification.OnDemandTargetCapacity", "1",
					"TargetCapacitySpecification.DefaultTargetCapacityType", "on-demand",
					"OnDemandOptions.AllocationStrategy", "prioritized",
				),
				tagSpecs("workers", "on-demand"),
			))
			if ids := ids(res.Instances); !slices.Equal(ids, []string{"i-0c4d5e6f7a8b90011", "i-0c4d5e6f7a8b90012"}) {
				t.Errorf("planned-path instances = %v", ids)
			}
			if len(res.Fallback) != 1 || res.Fallback[0].ID != "i-0c4d5e6f7a8b90013" ||
				res.Fallback[0].Market != cloud.OnDemand || res.Fallback[0].Zone != "us-east-1b" {
				t.Errorf("fallback = %+v, want i-0c4d5e6f7a8b90013 on-demand in us-east-1b", res.Fallback)
			}
			if len(res.Errors) != 2 || res.Errors[0].Code != code || res.Errors[0].Market != cloud.Spot ||
				res.Errors[0].Zone != "us-east-1b" || res.Errors[0].InstanceType != "t3.small" ||
				res.Errors[0].Message != capacityMessages[code] {
				t.Errorf("errors = %+v, want two %s spot errors in us-east-1b", res.Errors, code)
			}
			if got := testutil.ToFloat64(h.p.metrics.launchErrors.WithLabelValues(code, "spot")); got != 2 {
				t.Errorf("launch error counter for %s = %v, want 2", code, got)
			}
			if got := testutil.ToFloat64(h.p.metrics.launched.WithLabelValues("on-demand", "on-demand-fallback")); got != 1 {
				t.Errorf("fallback launches counted = %v, want 1", got)
			}
			if n := strings.Count(h.logs.String(), `"code":"`+code+`"`); n != 2 {
				t.Errorf("log lines with code %s = %d, want 2:\n%s", code, n, h.logs)
			}
		})
	}
}

func TestCreateFallbackAlsoShortReportsInsufficientCapacity(t *testing.T) {
	h := newHarness(t)
	h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-spot-partial.xml.tmpl",
		map[string]string{"Code": "InsufficientInstanceCapacity", "Message": capacityMessages["InsufficientInstanceCapacity"]}))
	h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-fallback-no-capacity.xml"))

	res, err := h.p.Create(context.Background(), twoSpotOneOnDemand())
	if !errors.Is(err, cloud.ErrInsufficientCapacity) {
		t.Fatalf("err = %v, want ErrInsufficientCapacity", err)
	}
	if !strings.Contains(err.Error(), "2 of 3 instances launched") {
		t.Errorf("error %q does not say how many launched", err)
	}
	if len(res.All()) != 2 || res.Shortfall() != 1 || len(res.Errors) != 3 {
		t.Errorf("result = %+v, want 2 launched, shortfall 1, 3 errors", res)
	}
	if got := testutil.ToFloat64(h.p.metrics.launchErrors.WithLabelValues("InsufficientInstanceCapacity", "on-demand")); got != 1 {
		t.Errorf("on-demand capacity errors counted = %v, want 1", got)
	}
}

func TestCreateNonCapacityOverrideErrorsFailWithoutFallback(t *testing.T) {
	h := newHarness(t)
	h.fake.on("CreateFleet", http.StatusOK, fixture(t, "create-fleet-unauthorized-overrides.xml"))

	res, err := h.p.Create(context.Background(), twoSpotOneOnDemand())
	if !errors.Is(err, cloud.ErrLaunchFailed) {
		t.Fatalf("err = %v, want ErrLaunchFailed", err)
	}
	if !strings.Contains(err.Error(), "UnauthorizedOperation") || !strings.Contains(err.Error(), "ec2:RunInstances") {
		t.Errorf("error %q does not name the code and the denied action", err)
	}
	if got := h.fake.actions(); !slices.Equal(got, []string{"CreateFleet"}) {
		t.Errorf("requests = %v, want no on-demand follow-up", got)
	}
	if len(res.All()) != 0 || len(res.Errors) != 2 {
		t.Errorf("result = %+v", res)
	}
}

func TestCreateAPIErrorsFailAtOnce(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		status  int
		code    string
	}{
		{"error-auth-failure.xml", http.StatusUnauthorized, "AuthFailure"},
		{"error-unauthorized-operation.xml", http.StatusForbidden, "UnauthorizedOperation"},
		{"error-invalid-launch-template.xml", http.StatusBadRequest, "InvalidLaunchTemplateId.NotFound"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := newHarness(t)
			h.fake.on("CreateFleet", tc.status, fixture(t, tc.fixture))

			res, err := h.p.Create(context.Background(), twoSpotOneOnDemand())
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
				t.Fatalf("err = %v, want API error %s", err, tc.code)
			}
			if !strings.Contains(err.Error(), "create workers") || !strings.Contains(err.Error(), "op-01JNBK7Z3Q") {
				t.Errorf("error %q lacks the group and client token", err)
			}
			// No retry and no fallback: exactly one request reached EC2.
			if got := h.fake.actions(); !slices.Equal(got, []string{"CreateFleet"}) {
				t.Errorf("requests = %v, want exactly one", got)
			}
			if len(res.All()) != 0 {
				t.Errorf("instances = %v, want none", res.All())
			}
		})
	}
}

func TestCreateRejectsBadRequestsBeforeCallingEC2(t *testing.T) {
	good := twoSpotOneOnDemand()
	for name, mutate := range map[string]func(*cloud.CreateRequest){
		"no token":   func(r *cloud.CreateRequest) { r.ClientToken = "" },
		"long token": func(r *cloud.CreateRequest) { r.ClientToken = strings.Repeat("x", 61) },
		"no group":   func(r *cloud.CreateRequest) { r.Group = "" },
		"no types":   func(r *cloud.CreateRequest) { r.InstanceTypes = nil },
		"bad market": func(r *cloud.CreateRequest) {
			r.Launches = []cloud.Launch{{Zone: "us-east-1a", Market: "reserved", Count: 1}}
		},
		"zero count": func(r *cloud.CreateRequest) { r.Launches = []cloud.Launch{{Zone: "us-east-1a", Market: cloud.Spot}} },
		"unknown zone": func(r *cloud.CreateRequest) {
			r.Launches = []cloud.Launch{{Zone: "us-east-1c", Market: cloud.Spot, Count: 1}}
		},
		"empty launchs": func(r *cloud.CreateRequest) { r.Launches = nil },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			req := good
			req.Launches = slices.Clone(good.Launches)
			mutate(&req)
			if _, err := h.p.Create(context.Background(), req); err == nil {
				t.Fatal("Create accepted a bad request")
			}
			if got := h.fake.actions(); len(got) != 0 {
				t.Errorf("requests = %v, want none", got)
			}
		})
	}
}

func TestListPaginatesDescribeInstances(t *testing.T) {
	h := newHarness(t)
	h.fake.on("DescribeInstances", http.StatusOK, fixture(t, "describe-instances-page1.xml"))
	h.fake.on("DescribeInstances", http.StatusOK, fixture(t, "describe-instances-page2.xml"))

	got, err := h.p.List(context.Background(), "workers")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	filters := values(
		"Action", "DescribeInstances",
		"Version", "2016-11-15",
		"MaxResults", "500",
		"Filter.1.Name", "tag:ManagedBy",
		"Filter.1.Value.1", "smartscale",
		"Filter.2.Name", "tag:ScalingGroup",
		"Filter.2.Value.1", "workers",
		"Filter.3.Name", "instance-state-name",
		"Filter.3.Value.1", "pending",
		"Filter.3.Value.2", "running",
		"Filter.3.Value.3", "shutting-down",
		"Filter.3.Value.4", "stopping",
		"Filter.3.Value.5", "stopped",
	)
	assertForm(t, h.fake.call(0).Form, filters)
	assertForm(t, h.fake.call(1).Form, merge(filters, values("NextToken",
		"eyJ2IjoiMiIsImMiOiJ3Z0lZb0ZqU0ZQN0tIOXBtY0hqUlNnPT0iLCJzIjoiMSIsInQiOiIxNzQwOTA2ODY3In0=")))
	if n := len(h.fake.actions()); n != 2 {
		t.Fatalf("requests = %d, want 2 pages", n)
	}
	want := []cloud.Instance{
		{ID: "i-0f3e2d1c0b9a80001", Group: "workers", NodeName: "ip-10-0-1-23.ec2.internal", ProviderID: "aws:///us-east-1a/i-0f3e2d1c0b9a80001", Zone: "us-east-1a", Market: cloud.Spot, Type: "t3a.small", LaunchTime: launchTime, State: cloud.Running},
		{ID: "i-0f3e2d1c0b9a80003", Group: "workers", NodeName: "ip-10-0-1-57.ec2.internal", ProviderID: "aws:///us-east-1a/i-0f3e2d1c0b9a80003", Zone: "us-east-1a", Market: cloud.OnDemand, Type: "t3.small", LaunchTime: launchTime, State: cloud.Running},
		{ID: "i-0f3e2d1c0b9a80002", Group: "workers", NodeName: "ip-10-0-2-81.ec2.internal", ProviderID: "aws:///us-east-1b/i-0f3e2d1c0b9a80002", Zone: "us-east-1b", Market: cloud.Spot, Type: "t3.small", LaunchTime: time.Date(2026, 3, 2, 9, 20, 3, 0, time.UTC), State: cloud.Pending},
	}
	if !slices.Equal(got, want) {
		t.Errorf("List:\n got %+v\nwant %+v", got, want)
	}
}

func TestTerminateOnlyOurLiveInstances(t *testing.T) {
	h := newHarness(t)
	h.fake.on("DescribeInstances", http.StatusOK, fixture(t, "describe-terminate-ours.xml"))
	h.fake.on("TerminateInstances", http.StatusOK, fixture(t, "terminate-instances.xml"))

	// i-0bbb… is gone (not described), i-0ccc… already terminated: only
	// i-0aaa… is left to terminate, and a retried call would succeed.
	err := h.p.Terminate(context.Background(), "workers",
		[]string{"i-0ccc000000000000c", "i-0aaa000000000000a", "i-0bbb000000000000b", "i-0aaa000000000000a"})
	if err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if got := h.fake.actions(); !slices.Equal(got, []string{"DescribeInstances", "TerminateInstances"}) {
		t.Fatalf("requests = %v", got)
	}
	assertForm(t, h.fake.call(0).Form, values(
		"Action", "DescribeInstances",
		"Version", "2016-11-15",
		"MaxResults", "500",
		"Filter.1.Name", "instance-id",
		"Filter.1.Value.1", "i-0aaa000000000000a",
		"Filter.1.Value.2", "i-0bbb000000000000b",
		"Filter.1.Value.3", "i-0ccc000000000000c",
	))
	assertForm(t, h.fake.call(1).Form, values(
		"Action", "TerminateInstances",
		"Version", "2016-11-15",
		"InstanceId.1", "i-0aaa000000000000a",
	))
}

func TestTerminateRefusesInstancesNotOursBeforeTerminating(t *testing.T) {
	for name, tc := range map[string]struct {
		id, why string
	}{
		"untagged":    {"i-0ddd000000000000d", `ManagedBy=""`},
		"other group": {"i-0eee000000000000e", `ScalingGroup="batch"`},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.on("DescribeInstances", http.StatusOK, fixture(t, "describe-terminate-mixed.xml"))

			err := h.p.Terminate(context.Background(), "workers", []string{"i-0aaa000000000000a", tc.id})
			if !errors.Is(err, cloud.ErrNotManaged) {
				t.Fatalf("err = %v, want ErrNotManaged", err)
			}
			if !strings.Contains(err.Error(), tc.id) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not name %s and why (%s)", err, tc.id, tc.why)
			}
			// Refused as a whole: not even our own instance is terminated.
			if got := h.fake.actions(); !slices.Equal(got, []string{"DescribeInstances"}) {
				t.Errorf("requests = %v, want no TerminateInstances", got)
			}
		})
	}
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		fixture, id string
		ok          bool
		group       string
	}{
		{"describe-terminate-mixed.xml", "i-0aaa000000000000a", true, "workers"},
		{"describe-terminate-mixed.xml", "i-0eee000000000000e", true, "batch"},
		{"describe-terminate-mixed.xml", "i-0ddd000000000000d", false, ""},
		{"describe-instances-empty.xml", "i-0fff000000000000f", false, ""},
	} {
		t.Run(tc.id, func(t *testing.T) {
			h := newHarness(t)
			h.fake.on("DescribeInstances", http.StatusOK, fixture(t, tc.fixture))
			inst, ok, err := h.p.Find(context.Background(), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || inst.Group != tc.group || (ok && inst.ID != tc.id) {
				t.Errorf("Find(%s) = %+v, %v; want ok=%v group %q", tc.id, inst, ok, tc.ok, tc.group)
			}
			assertForm(t, h.fake.call(0).Form, values(
				"Action", "DescribeInstances", "Version", "2016-11-15", "MaxResults", "500",
				"Filter.1.Name", "instance-id", "Filter.1.Value.1", tc.id,
			))
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	_, client := newFakeEC2(t)
	for name, o := range map[string]Options{
		"no template":   {Subnets: map[string]string{"a": "s"}},
		"no subnets":    {LaunchTemplateID: "lt-1"},
		"empty subnet":  {LaunchTemplateID: "lt-1", Subnets: map[string]string{"a": ""}},
		"bad page size": {LaunchTemplateID: "lt-1", Subnets: map[string]string{"a": "s"}, DescribePageSize: 2000},
	} {
		if _, err := New(client, o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func ids(is []cloud.Instance) []string {
	out := make([]string, len(is))
	for i, in := range is {
		out[i] = in.ID
	}
	return out
}
