package aws

import (
	"context"
	"fmt"
	"slices"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/smartscale/smartscale/internal/cloud"
)

// liveStates are every state but terminated: what List reports, so the
// reconciler sees instances still booting and those on their way out.
var liveStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// List returns the group's instances that are not terminated, found by their
// ManagedBy and ScalingGroup tags, across every DescribeInstances page.
func (p *Provider) List(ctx context.Context, group string) ([]cloud.Instance, error) {
	if group == "" {
		return nil, fmt.Errorf("list: group is empty")
	}
	found, err := p.describe(ctx, []types.Filter{
		{Name: sdkaws.String("tag:" + TagManagedBy), Values: []string{ManagedByValue}},
		{Name: sdkaws.String("tag:" + TagScalingGroup), Values: []string{group}},
		{Name: sdkaws.String("instance-state-name"), Values: liveStates},
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", group, err)
	}
	out := make([]cloud.Instance, 0, len(found))
	for _, i := range found {
		out = append(out, instanceOf(i))
	}
	return out, nil
}

// Find returns the instance with the given id if SmartScale manages it (any
// group, any state, terminated included); ok is false for an instance that
// does not exist or is not tagged ManagedBy=smartscale.
func (p *Provider) Find(ctx context.Context, instanceID string) (cloud.Instance, bool, error) {
	found, err := p.describe(ctx, []types.Filter{
		{Name: sdkaws.String("instance-id"), Values: []string{instanceID}},
	})
	if err != nil {
		return cloud.Instance{}, false, fmt.Errorf("find %s: %w", instanceID, err)
	}
	for _, i := range found {
		if sdkaws.ToString(i.InstanceId) == instanceID && tag(i.Tags, TagManagedBy) == ManagedByValue {
			return instanceOf(i), true, nil
		}
	}
	return cloud.Instance{}, false, nil
}

// Terminate ends the given instances of group. It first describes them and
// refuses the whole call, before any TerminateInstances, if one of them is
// not tagged ManagedBy=smartscale with this group's ScalingGroup. Instances
// already gone (not found, or terminated) count as done, so a retried
// Terminate succeeds.
func (p *Provider) Terminate(ctx context.Context, group string, instanceIDs []string) error {
	ids := slices.Compact(slices.Sorted(slices.Values(instanceIDs)))
	if len(ids) == 0 {
		return nil
	}
	if group == "" || slices.Contains(ids, "") {
		return fmt.Errorf("terminate: group and instance ids must not be empty")
	}
	found, err := p.describe(ctx, []types.Filter{
		{Name: sdkaws.String("instance-id"), Values: ids},
	})
	if err != nil {
		return fmt.Errorf("terminate %s: describe before terminating: %w", group, err)
	}
	byID := make(map[string]types.Instance, len(found))
	for _, i := range found {
		byID[sdkaws.ToString(i.InstanceId)] = i
	}
	var refused []string
	var kill []string
	for _, id := range ids {
		i, ok := byID[id]
		switch {
		case !ok:
			p.log.Info("instance already gone", "nodegroup", group, "action", "terminate", "instance", id, "reason", "not_found")
		case tag(i.Tags, TagManagedBy) != ManagedByValue:
			refused = append(refused, fmt.Sprintf("%s (%s=%q)", id, TagManagedBy, tag(i.Tags, TagManagedBy)))
		case tag(i.Tags, TagScalingGroup) != group:
			refused = append(refused, fmt.Sprintf("%s (%s=%q)", id, TagScalingGroup, tag(i.Tags, TagScalingGroup)))
		case i.State != nil && i.State.Name == types.InstanceStateNameTerminated:
			p.log.Info("instance already gone", "nodegroup", group, "action", "terminate", "instance", id, "reason", "terminated")
		default:
			kill = append(kill, id)
		}
	}
	if len(refused) > 0 {
		p.log.Error("terminate refused", "nodegroup", group, "action", "terminate", "reason", "not_managed",
			"instances", strings.Join(refused, ", "))
		return fmt.Errorf("terminate %s: %w: %s", group, cloud.ErrNotManaged, strings.Join(refused, ", "))
	}
	if len(kill) == 0 {
		return nil
	}
	out, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: kill})
	if err != nil {
		return fmt.Errorf("terminate %s: TerminateInstances %s: %w", group, strings.Join(kill, ","), err)
	}
	for _, c := range out.TerminatingInstances {
		var prev, cur types.InstanceStateName
		if c.PreviousState != nil {
			prev = c.PreviousState.Name
		}
		if c.CurrentState != nil {
			cur = c.CurrentState.Name
		}
		p.log.Info("instance terminating", "nodegroup", group, "action", "terminate",
			"instance", sdkaws.ToString(c.InstanceId), "previous_state", prev, "state", cur)
	}
	return nil
}

// describe runs DescribeInstances with filters over every page. Filters
// (rather than InstanceIds) make a missing instance an absent row instead of
// an InvalidInstanceID.NotFound error for the whole call.
func (p *Provider) describe(ctx context.Context, filters []types.Filter) ([]types.Instance, error) {
	pages := ec2.NewDescribeInstancesPaginator(p.ec2, &ec2.DescribeInstancesInput{
		Filters:    filters,
		MaxResults: sdkaws.Int32(p.opts.DescribePageSize),
	})
	var out []types.Instance
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeInstances: %w", err)
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

func instanceOf(i types.Instance) cloud.Instance {
	var zone string
	if i.Placement != nil {
		zone = sdkaws.ToString(i.Placement.AvailabilityZone)
	}
	var state cloud.State
	if i.State != nil {
		state = cloud.State(i.State.Name)
	}
	// EC2's lifecycle attribute is the truth (set for spot, absent for
	// on-demand); the tag only exists on single-market launches.
	market := cloud.OnDemand
	if i.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		market = cloud.Spot
	}
	id := sdkaws.ToString(i.InstanceId)
	return cloud.Instance{
		ID:         id,
		Group:      tag(i.Tags, TagScalingGroup),
		NodeName:   sdkaws.ToString(i.PrivateDnsName),
		ProviderID: providerID(zone, id),
		Zone:       zone,
		Market:     market,
		Type:       string(i.InstanceType),
		LaunchTime: sdkaws.ToTime(i.LaunchTime),
		State:      state,
	}
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if sdkaws.ToString(t.Key) == key {
			return sdkaws.ToString(t.Value)
		}
	}
	return ""
}
