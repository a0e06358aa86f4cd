package cloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/cloud/aws"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
)

// provider is the interface the scaler declares; both implementations must
// satisfy it with the same method set.
type provider interface {
	Create(ctx context.Context, req cloud.CreateRequest) (cloud.CreateResult, error)
	Terminate(ctx context.Context, group string, instanceIDs []string) error
	List(ctx context.Context, group string) ([]cloud.Instance, error)
	Find(ctx context.Context, instanceID string) (cloud.Instance, bool, error)
}

var (
	_ provider = (*aws.Provider)(nil)
	_ provider = (*kwok.Provider)(nil)
)

func TestCreateRequestValidate(t *testing.T) {
	good := cloud.CreateRequest{
		Group:         "workers",
		Launches:      []cloud.Launch{{Zone: "us-east-1a", Market: cloud.Spot, Count: 2}, {Zone: "us-east-1b", Market: cloud.OnDemand, Count: 1}},
		InstanceTypes: []string{"t3.small"},
		ClientToken:   "op-1",
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good request: %v", err)
	}
	if good.Count("") != 3 || good.Count(cloud.Spot) != 2 || good.Count(cloud.OnDemand) != 1 {
		t.Errorf("counts = %d/%d/%d", good.Count(""), good.Count(cloud.Spot), good.Count(cloud.OnDemand))
	}
	bad := cloud.CreateRequest{Launches: []cloud.Launch{{Market: "reserved"}}, InstanceTypes: []string{""}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad request accepted")
	}
	// Every problem is reported at once.
	for _, want := range []string{"group is empty", "client token is empty", "empty instance type",
		"launch 0: zone is empty", `market "reserved"`, "count 0 is below 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestResultShortfallAndCapacityCodes(t *testing.T) {
	r := cloud.CreateResult{Requested: 3, Instances: []cloud.Instance{{ID: "a"}}, Fallback: []cloud.Instance{{ID: "b"}}}
	if r.Shortfall() != 1 || len(r.All()) != 2 || r.All()[1].ID != "b" {
		t.Errorf("shortfall %d, all %v", r.Shortfall(), r.All())
	}
	for _, c := range cloud.CapacityCodes() {
		if !(cloud.LaunchError{Code: c}).Capacity() {
			t.Errorf("%s is not a capacity code", c)
		}
	}
	for _, c := range []string{"UnauthorizedOperation", "InvalidLaunchTemplateId.NotFound", "AuthFailure"} {
		if cloud.IsCapacityCode(c) {
			t.Errorf("%s counted as capacity", c)
		}
	}
	if errors.Is(cloud.ErrLaunchFailed, cloud.ErrInsufficientCapacity) {
		t.Error("sentinels overlap")
	}
}
