// Package cloud holds what every node provider shares: the instance a
// provider reports, the launch request the scaler sends, and the result that
// says what came of it. The implementations live in cloud/aws (EC2
// CreateFleet) and cloud/kwok (fake nodes managed by kwok); both have the
// same method set, so the scaler declares one interface for either:
//
//	Create(ctx, CreateRequest) (CreateResult, error)
//	Terminate(ctx, group string, instanceIDs []string) error
//	List(ctx, group string) ([]Instance, error)
//	Find(ctx, instanceID string) (Instance, bool, error)
//
// Create returns what was launched even when it also returns an error, so a
// partial launch is never lost: callers record or clean up result.All()
// whatever err says.
package cloud

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Node labels SmartScale sets and reads. kwok nodes get them from the kwok
// provider; real K3s agents get them from the worker user data.
const (
	LabelZone         = "topology.kubernetes.io/zone"
	LabelRegion       = "topology.kubernetes.io/region"
	LabelInstanceType = "node.kubernetes.io/instance-type"
	LabelMarket       = "smartscale.io/market"
	LabelNodeGroup    = "smartscale.io/nodegroup"
)

// Market is how an instance is bought. The values are those of the
// smartscale.io/market label and the smartscale/market tag.
type Market string

// Markets.
const (
	Spot     Market = "spot"
	OnDemand Market = "on-demand"
)

// Valid reports whether m is one of the two markets.
func (m Market) Valid() bool { return m == Spot || m == OnDemand }

// State is an instance's lifecycle state, with EC2's names.
type State string

// States. kwok nodes are pending until kwok marks them Ready, running after,
// and shutting-down once their deletion has begun.
const (
	Pending      State = "pending"
	Running      State = "running"
	ShuttingDown State = "shutting-down"
	Terminated   State = "terminated"
	Stopping     State = "stopping"
	Stopped      State = "stopped"
)

// Instance is one machine of a node group, as its provider sees it.
type Instance struct {
	ID    string `json:"id"`
	Group string `json:"nodegroup"`
	// NodeName is the Kubernetes Node's name when the provider knows it: the
	// kwok node's name, or the EC2 private DNS name (K3s's default node name;
	// empty in a CreateFleet answer). Match nodes by ProviderID or ID first.
	NodeName string `json:"nodeName,omitempty"`
	// ProviderID is the Node's spec.providerID: aws:///<zone>/<id> or
	// kwok://<name>.
	ProviderID string    `json:"providerID"`
	Zone       string    `json:"zone"`
	Market     Market    `json:"market"`
	Type       string    `json:"instanceType"`
	LaunchTime time.Time `json:"launchTime"`
	State      State     `json:"state"`
}

// Launch asks for Count instances of one market in one zone.
type Launch struct {
	Zone   string `json:"zone"`
	Market Market `json:"market"`
	Count  int    `json:"count"`
}

// CreateRequest is one planned launch for one node group.
type CreateRequest struct {
	Group    string   `json:"nodegroup"`
	Launches []Launch `json:"launches"`
	// InstanceTypes in order of preference (the group's configured order).
	InstanceTypes []string `json:"instanceTypes"`
	// ClientToken makes the launch idempotent: a retried Create with the same
	// token launches nothing new. The scaler uses its operation id. At most
	// MaxClientTokenLen characters, so providers can derive follow-up tokens.
	ClientToken string `json:"clientToken"`
}

// MaxClientTokenLen leaves room under EC2's 64-character limit for the
// suffix of the on-demand follow-up's token.
const MaxClientTokenLen = 60

// Count is the number of instances asked for in market m ("" for all).
func (r CreateRequest) Count(m Market) int {
	n := 0
	for _, l := range r.Launches {
		if m == "" || l.Market == m {
			n += l.Count
		}
	}
	return n
}

// Validate checks what every provider relies on.
func (r CreateRequest) Validate() error {
	var errs []error
	if r.Group == "" {
		errs = append(errs, errors.New("group is empty"))
	}
	if r.ClientToken == "" {
		errs = append(errs, errors.New("client token is empty"))
	} else if len(r.ClientToken) > MaxClientTokenLen {
		errs = append(errs, fmt.Errorf("client token is %d characters, at most %d", len(r.ClientToken), MaxClientTokenLen))
	}
	if len(r.InstanceTypes) == 0 {
		errs = append(errs, errors.New("no instance types"))
	}
	if slices.Contains(r.InstanceTypes, "") {
		errs = append(errs, errors.New("empty instance type"))
	}
	if len(r.Launches) == 0 {
		errs = append(errs, errors.New("no launches"))
	}
	for i, l := range r.Launches {
		if l.Zone == "" {
			errs = append(errs, fmt.Errorf("launch %d: zone is empty", i))
		}
		if !l.Market.Valid() {
			errs = append(errs, fmt.Errorf("launch %d: market %q is not spot or on-demand", i, l.Market))
		}
		if l.Count < 1 {
			errs = append(errs, fmt.Errorf("launch %d: count %d is below 1", i, l.Count))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid create request: %w", err)
	}
	return nil
}

// CreateResult says what one Create launched and what went wrong on the way.
type CreateResult struct {
	// Requested is the number of instances the request asked for.
	Requested int `json:"requested"`
	// Instances came from the planned request.
	Instances []Instance `json:"instances"`
	// Fallback came from the on-demand follow-up for a spot shortfall.
	Fallback []Instance `json:"fallback,omitempty"`
	// Errors are every per-launch failure the provider reported, in order;
	// they may be present even when everything asked for was launched.
	Errors []LaunchError `json:"errors,omitempty"`
}

// All returns every launched instance, planned path first.
func (r CreateResult) All() []Instance {
	return append(slices.Clone(r.Instances), r.Fallback...)
}

// Shortfall is how many instances are missing from what was requested.
func (r CreateResult) Shortfall() int {
	return max(0, r.Requested-len(r.Instances)-len(r.Fallback))
}

// LaunchError is one failure the provider reported for part of a launch
// (for EC2, one CreateFleet error item: one override in one market).
type LaunchError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Market       Market `json:"market,omitempty"`
	Zone         string `json:"zone,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
}

// Capacity reports whether the error means "no capacity now" rather than a
// mistake: only then does launching on-demand instead make sense.
func (e LaunchError) Capacity() bool { return IsCapacityCode(e.Code) }

func (e LaunchError) Error() string {
	return fmt.Sprintf("%s (%s %s %s): %s", e.Code, e.Market, e.InstanceType, e.Zone, e.Message)
}

// capacityCodes are the EC2 error codes that mean a pool is out of capacity
// or price, where another market or pool may still succeed.
var capacityCodes = []string{
	"InsufficientInstanceCapacity",
	"SpotMaxPriceTooLow",
	"MaxSpotInstanceCountExceeded",
	"UnfulfillableCapacity",
	"InsufficientFreeAddressesInSubnet",
}

// CapacityCodes returns the error codes that trigger the on-demand fallback.
func CapacityCodes() []string { return slices.Clone(capacityCodes) }

// IsCapacityCode reports whether code is a capacity error code.
func IsCapacityCode(code string) bool { return slices.Contains(capacityCodes, code) }

// Errors a provider returns; test them with errors.Is.
var (
	// ErrInsufficientCapacity: fewer instances than requested were launched,
	// every failure being a capacity one. The result holds what launched.
	ErrInsufficientCapacity = errors.New("insufficient capacity")
	// ErrLaunchFailed: the provider refused part of the launch for a reason
	// other than capacity (permissions, invalid template…); retrying the
	// same request will not help.
	ErrLaunchFailed = errors.New("launch failed")
	// ErrNotManaged: an instance is not SmartScale's or not the group's, so
	// it was not touched.
	ErrNotManaged = errors.New("instance not managed by this node group")
)
