package aws

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/smartscale/smartscale/internal/cloud"
)

// Launch paths, the "path" label of smartscale_cloud_instances_launched_total.
const (
	pathPlanned  = "planned"
	pathFallback = "on-demand-fallback"
)

// fallbackTokenSuffix derives the follow-up's client token from the plan's,
// so a retried Create repeats the follow-up idempotently too.
const fallbackTokenSuffix = "-od"

// Create launches the request with one CreateFleet (type instant) and, when
// spot capacity falls short for capacity reasons only, a second one buying
// the shortfall on-demand. The result holds every instance launched, even
// alongside an error: errors.Is(err, cloud.ErrInsufficientCapacity) for a
// capacity shortfall, cloud.ErrLaunchFailed for any other per-override
// error, or the wrapped API error (auth, throttling that outlived retries).
func (p *Provider) Create(ctx context.Context, req cloud.CreateRequest) (cloud.CreateResult, error) {
	res := cloud.CreateResult{Requested: req.Count("")}
	if err := req.Validate(); err != nil {
		return res, err
	}
	for _, l := range req.Launches {
		if _, ok := p.opts.Subnets[l.Zone]; !ok {
			return res, fmt.Errorf("create %s: no subnet configured for zone %s", req.Group, l.Zone)
		}
	}
	spot, onDemand := req.Count(cloud.Spot), req.Count(cloud.OnDemand)

	// The planned request: on-demand goes first to the zones the plan puts
	// on-demand nodes in, then to those with the most nodes planned.
	zones := rankZones(req.Launches, func(l cloud.Launch) [2]int {
		if l.Market == cloud.OnDemand {
			return [2]int{l.Count, l.Count}
		}
		return [2]int{0, l.Count}
	})
	in := p.fleetInput(req, zones, spot, onDemand, req.ClientToken)
	launched, errs, err := p.launch(ctx, req.Group, in, pathPlanned)
	res.Instances, res.Errors = launched, errs
	if err != nil {
		return res, err
	}
	spotShort := spot - countMarket(launched, cloud.Spot)
	odShort := onDemand - countMarket(launched, cloud.OnDemand)
	if spotShort+odShort > 0 {
		if bad := nonCapacity(errs); len(bad) > 0 {
			return res, fmt.Errorf("create %s: %w: %s", req.Group, cloud.ErrLaunchFailed, summarize(bad))
		}
	}
	if spotShort > 0 {
		// Buy the spot shortfall on-demand, preferring the zones it was
		// planned for, in the order of how much each is missing.
		got := map[string]int{}
		for _, i := range launched {
			if i.Market == cloud.Spot {
				got[i.Zone]++
			}
		}
		zones := rankZones(req.Launches, func(l cloud.Launch) [2]int {
			if l.Market != cloud.Spot {
				return [2]int{0, 0}
			}
			missing := max(0, l.Count-got[l.Zone])
			got[l.Zone] = max(0, got[l.Zone]-l.Count)
			return [2]int{missing, l.Count}
		})
		p.log.Warn("spot shortfall, launching on-demand instead",
			"nodegroup", req.Group, "action", "create", "reason", "spot_capacity", "count", spotShort,
			"codes", summarize(res.Errors))
		in := p.fleetInput(req, zones, 0, spotShort, req.ClientToken+fallbackTokenSuffix)
		fallback, ferrs, err := p.launch(ctx, req.Group, in, pathFallback)
		res.Fallback = fallback
		res.Errors = append(res.Errors, ferrs...)
		if err != nil {
			return res, err
		}
		if len(fallback) < spotShort {
			if bad := nonCapacity(ferrs); len(bad) > 0 {
				return res, fmt.Errorf("create %s: on-demand fallback: %w: %s", req.Group, cloud.ErrLaunchFailed, summarize(bad))
			}
		}
	}
	if short := res.Shortfall(); short > 0 {
		return res, fmt.Errorf("create %s: %w: %d of %d instances launched (%s)",
			req.Group, cloud.ErrInsufficientCapacity, res.Requested-short, res.Requested, summarize(res.Errors))
	}
	return res, nil
}

// launch sends one CreateFleet and reads its answer. Per-override errors are
// logged and counted here, once each.
func (p *Provider) launch(ctx context.Context, group string, in *ec2.CreateFleetInput, path string) ([]cloud.Instance, []cloud.LaunchError, error) {
	out, err := p.ec2.CreateFleet(ctx, in)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: CreateFleet (%s, client token %s): %w",
			group, path, sdkaws.ToString(in.ClientToken), err)
	}
	now := p.opts.Now()
	var launched []cloud.Instance
	for _, fi := range out.Instances {
		zone := sdkaws.ToString(fi.AvailabilityZone)
		subnet := sdkaws.ToString(fi.SubnetId)
		itype := string(fi.InstanceType)
		if o := overridesOf(fi.LaunchTemplateAndOverrides); o != nil {
			zone = cmp.Or(zone, sdkaws.ToString(o.AvailabilityZone))
			subnet = cmp.Or(subnet, sdkaws.ToString(o.SubnetId))
			itype = cmp.Or(itype, string(o.InstanceType))
		}
		zone = cmp.Or(zone, p.zoneOf[subnet])
		market := marketOf(fi.Lifecycle)
		for _, id := range fi.InstanceIds {
			launched = append(launched, cloud.Instance{
				ID: id, Group: group, ProviderID: providerID(zone, id), Zone: zone,
				Market: market, Type: itype, LaunchTime: now, State: cloud.Pending,
			})
			p.metrics.launched.WithLabelValues(string(market), path).Inc()
			p.log.Info("instance launched", "nodegroup", group, "action", "create", "instance", id,
				"zone", zone, "market", market, "instance_type", itype, "path", path)
		}
	}
	var errs []cloud.LaunchError
	for _, fe := range out.Errors {
		le := cloud.LaunchError{
			Code:    sdkaws.ToString(fe.ErrorCode),
			Message: sdkaws.ToString(fe.ErrorMessage),
			Market:  marketOf(fe.Lifecycle),
		}
		if o := overridesOf(fe.LaunchTemplateAndOverrides); o != nil {
			le.InstanceType = string(o.InstanceType)
			le.Zone = cmp.Or(sdkaws.ToString(o.AvailabilityZone), p.zoneOf[sdkaws.ToString(o.SubnetId)])
		}
		errs = append(errs, le)
		p.metrics.launchErrors.WithLabelValues(le.Code, string(le.Market)).Inc()
		p.log.Warn("launch error", "nodegroup", group, "action", "create", "code", le.Code,
			"market", le.Market, "zone", le.Zone, "instance_type", le.InstanceType,
			"capacity", le.Capacity(), "reason", le.Message, "path", path)
	}
	return launched, errs, nil
}

// fleetInput builds one instant CreateFleet for spot + onDemand instances.
// Overrides cover every zone × instance type, listed (and, for on-demand,
// prioritized) zone by zone in the given order and, within a zone, in the
// configured type order: the zone split is the plan's guarantee, while the
// types are interchangeable sizes.
func (p *Provider) fleetInput(req cloud.CreateRequest, zones []string, spot, onDemand int, token string) *ec2.CreateFleetInput {
	var overrides []types.FleetLaunchTemplateOverridesRequest
	for _, zone := range zones {
		for _, t := range req.InstanceTypes {
			overrides = append(overrides, types.FleetLaunchTemplateOverridesRequest{
				InstanceType: types.InstanceType(t),
				SubnetId:     sdkaws.String(p.opts.Subnets[zone]),
				Priority:     sdkaws.Float64(float64(len(overrides))),
			})
		}
	}
	target := &types.TargetCapacitySpecificationRequest{
		TotalTargetCapacity:       sdkaws.Int32(int32(spot + onDemand)),
		DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand,
	}
	in := &ec2.CreateFleetInput{
		Type:        types.FleetTypeInstant,
		ClientToken: sdkaws.String(token),
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{
				LaunchTemplateId: sdkaws.String(p.opts.LaunchTemplateID),
				Version:          sdkaws.String(p.opts.LaunchTemplateVersion),
			},
			Overrides: overrides,
		}},
		TargetCapacitySpecification: target,
	}
	if spot > 0 {
		target.SpotTargetCapacity = sdkaws.Int32(int32(spot))
		target.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategyPriceCapacityOptimized}
	}
	if onDemand > 0 {
		target.OnDemandTargetCapacity = sdkaws.Int32(int32(onDemand))
		in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyPrioritized}
	}
	tags := []types.Tag{
		{Key: sdkaws.String(TagProject), Value: sdkaws.String(p.opts.Project)},
		{Key: sdkaws.String(TagManagedBy), Value: sdkaws.String(ManagedByValue)},
		{Key: sdkaws.String(TagScalingGroup), Value: sdkaws.String(req.Group)},
		{Key: sdkaws.String(TagName), Value: sdkaws.String("smartscale-" + req.Group)},
	}
	switch {
	case spot > 0 && onDemand == 0:
		tags = append(tags, types.Tag{Key: sdkaws.String(TagMarket), Value: sdkaws.String(string(cloud.Spot))})
	case onDemand > 0 && spot == 0:
		tags = append(tags, types.Tag{Key: sdkaws.String(TagMarket), Value: sdkaws.String(string(cloud.OnDemand))})
	}
	in.TagSpecifications = []types.TagSpecification{
		{ResourceType: types.ResourceTypeInstance, Tags: tags},
		{ResourceType: types.ResourceTypeVolume, Tags: tags},
	}
	return in
}

// rankZones orders the request's zones by weight (each launch contributes
// its [primary, secondary] weights to its zone), heaviest first; ties keep
// the order the zones first appear in.
func rankZones(launches []cloud.Launch, weight func(cloud.Launch) [2]int) []string {
	var zones []string
	w := map[string][2]int{}
	for _, l := range launches {
		if _, seen := w[l.Zone]; !seen {
			zones = append(zones, l.Zone)
		}
		lw, zw := weight(l), w[l.Zone]
		w[l.Zone] = [2]int{zw[0] + lw[0], zw[1] + lw[1]}
	}
	slices.SortStableFunc(zones, func(a, b string) int {
		return cmp.Or(cmp.Compare(w[b][0], w[a][0]), cmp.Compare(w[b][1], w[a][1]))
	})
	return zones
}

func overridesOf(lo *types.LaunchTemplateAndOverridesResponse) *types.FleetLaunchTemplateOverrides {
	if lo == nil {
		return nil
	}
	return lo.Overrides
}

func marketOf(l types.InstanceLifecycle) cloud.Market {
	if l == types.InstanceLifecycleSpot {
		return cloud.Spot
	}
	return cloud.OnDemand
}

func providerID(zone, id string) string { return "aws:///" + zone + "/" + id }

func countMarket(is []cloud.Instance, m cloud.Market) int {
	n := 0
	for _, i := range is {
		if i.Market == m {
			n++
		}
	}
	return n
}

func nonCapacity(errs []cloud.LaunchError) []cloud.LaunchError {
	var bad []cloud.LaunchError
	for _, e := range errs {
		if !e.Capacity() {
			bad = append(bad, e)
		}
	}
	return bad
}

// summarize lists each error code with its count and one message, stable.
func summarize(errs []cloud.LaunchError) string {
	if len(errs) == 0 {
		return "no error reported"
	}
	count := map[string]int{}
	msg := map[string]string{}
	var codes []string
	for _, e := range errs {
		if count[e.Code] == 0 {
			codes = append(codes, e.Code)
			msg[e.Code] = e.Message
		}
		count[e.Code]++
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s×%d: %s", c, count[c], msg[c])
	}
	return strings.Join(parts, "; ")
}
