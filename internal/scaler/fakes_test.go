package scaler_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/policy"
)

// fakeWorld is a cluster and a cloud in memory, for the scaler's logic
// tests: instances the provider creates register as Ready nodes at once
// (unless neverReady), drains move pods away (unless blockDrain). The same
// behaviours against a real API server and kwok are in integration_test.go.
type fakeWorld struct {
	mu         sync.Mutex
	clock      *fakeClock
	nodes      map[string]*policy.Node
	pods       []policy.Pod
	instances  map[string]cloud.Instance
	events     []string
	calls      []string
	neverReady bool
	blockDrain bool
	// hang makes the named call block until its context ends (a crash
	// mid-step: the test then closes the scaler).
	hang    string
	hanging chan struct{}
	seq     int
	notices []notify.Notice
}

func newWorld(clock *fakeClock) *fakeWorld {
	return &fakeWorld{clock: clock, nodes: map[string]*policy.Node{}, instances: map[string]cloud.Instance{}, hanging: make(chan struct{}, 10)}
}

func (w *fakeWorld) addNode(name, zone string, market policy.Market, age time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := "i-" + name
	w.nodes[name] = &policy.Node{
		Name: name, NodeGroup: "workers", InstanceID: id, Zone: zone, Market: market, InstanceType: "t3.small",
		Allocatable: policy.Resources{MilliCPU: 2000, Memory: 2 << 30, Pods: 110},
		Created:     w.clock.Now().Add(-age), Ready: true, Annotations: map[string]string{}, Labels: map[string]string{},
	}
	w.instances[id] = cloud.Instance{ID: id, Group: "workers", NodeName: name, Zone: zone, Market: cloud.Market(market),
		Type: "t3.small", LaunchTime: w.clock.Now().Add(-age), State: cloud.Running}
}

func (w *fakeWorld) addPod(name, node string, milliCPU int64, owner string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	phase := "Running"
	if node == "" {
		phase = "Pending"
	}
	w.pods = append(w.pods, policy.Pod{Namespace: "default", Name: name, UID: "uid-" + name, NodeName: node, Phase: phase,
		OwnerKind: owner, OwnerName: "app", Requests: policy.Resources{MilliCPU: milliCPU, Memory: 64 << 20, Pods: 1},
		Unschedulable: node == ""})
}

func (w *fakeWorld) record(call string) {
	w.calls = append(w.calls, call)
}

func (w *fakeWorld) maybeHang(ctx context.Context, call string) error {
	if w.hang != call {
		return nil
	}
	w.hanging <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

func (w *fakeWorld) nodeCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.nodes)
}

func (w *fakeWorld) callList() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

// Cluster

func (w *fakeWorld) HasSynced() bool { return true }

func (w *fakeWorld) Snapshot(group string) (policy.Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s policy.Snapshot
	for _, n := range w.nodes {
		c := *n
		s.Nodes = append(s.Nodes, c)
	}
	s.Pods = append(s.Pods, w.pods...)
	return s, nil
}

func (w *fakeWorld) WaitForReady(ctx context.Context, id string, timeout time.Duration) (policy.Node, error) {
	if err := w.maybeHang(ctx, "WaitForReady"); err != nil {
		return policy.Node{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("WaitForReady " + id)
	for _, n := range w.nodes {
		if n.InstanceID == id && n.Ready {
			return *n, nil
		}
	}
	return policy.Node{}, &kube.ReadyTimeoutError{ID: id, Timeout: timeout}
}

func (w *fakeWorld) Cordon(ctx context.Context, node string) (bool, error) {
	if err := w.maybeHang(ctx, "Cordon"); err != nil {
		return false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Cordon " + node)
	n, ok := w.nodes[node]
	if !ok {
		return false, fmt.Errorf("node %s not found", node)
	}
	if n.Unschedulable && n.Annotations[kube.AnnotationCordonedBy] != kube.CordonedBy {
		return false, nil
	}
	n.Unschedulable = true
	n.Annotations[kube.AnnotationCordonedBy] = kube.CordonedBy
	return true, nil
}

func (w *fakeWorld) Uncordon(_ context.Context, node string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Uncordon " + node)
	n, ok := w.nodes[node]
	if !ok || n.Annotations[kube.AnnotationCordonedBy] != kube.CordonedBy {
		return false, nil
	}
	n.Unschedulable = false
	delete(n.Annotations, kube.AnnotationCordonedBy)
	return true, nil
}

func (w *fakeWorld) Drain(ctx context.Context, node string, _ kube.DrainOptions) error {
	if err := w.maybeHang(ctx, "Drain"); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("Drain " + node)
	if w.blockDrain {
		n := w.nodes[node]
		n.Unschedulable = false
		delete(n.Annotations, kube.AnnotationCordonedBy)
		return &kube.DrainError{Node: node, Err: kube.ErrDrainTimeout}
	}
	for i := range w.pods {
		if w.pods[i].NodeName == node && w.pods[i].OwnerKind != "DaemonSet" {
			w.pods[i].NodeName = ""
		}
	}
	return nil
}

func (w *fakeWorld) Resume(ctx context.Context, node string, opts kube.ResumeOptions) (kube.ResumeResult, error) {
	w.mu.Lock()
	n, ok := w.nodes[node]
	w.record(fmt.Sprintf("Resume %s finish=%v", node, opts.Finish))
	w.mu.Unlock()
	if !ok {
		return kube.ResumeNodeGone, nil
	}
	if n.Annotations[kube.AnnotationCordonedBy] != kube.CordonedBy {
		return kube.ResumeNotOurs, nil
	}
	if !opts.Finish {
		_, err := w.Uncordon(ctx, node)
		return kube.ResumeUncordoned, err
	}
	if err := w.Drain(ctx, node, opts.Drain); err != nil {
		return kube.ResumeUncordoned, nil
	}
	return kube.ResumeDrained, nil
}

func (w *fakeWorld) DeleteNode(_ context.Context, node string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record("DeleteNode " + node)
	delete(w.nodes, node)
	return nil
}

func (w *fakeWorld) Event(node, eventtype, reason, messageFmt string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, reason+" "+node)
}

// Provider

func (w *fakeWorld) Create(ctx context.Context, req cloud.CreateRequest) (cloud.CreateResult, error) {
	if err := w.maybeHang(ctx, "Create"); err != nil {
		return cloud.CreateResult{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record(fmt.Sprintf("Create %d token=%s", req.Count(""), req.ClientToken))
	res := cloud.CreateResult{Requested: req.Count("")}
	// Idempotent on the client token, as CreateFleet is.
	for _, in := range w.instances {
		if in.NodeName != "" && len(in.ID) > len(req.ClientToken) && in.ID[:len(req.ClientToken)] == req.ClientToken {
			res.Instances = append(res.Instances, in)
		}
	}
	if len(res.Instances) > 0 {
		return res, nil
	}
	for _, l := range req.Launches {
		for range l.Count {
			w.seq++
			name := fmt.Sprintf("new-%d", w.seq)
			id := req.ClientToken + "-" + name
			in := cloud.Instance{ID: id, Group: req.Group, NodeName: name, Zone: l.Zone, Market: l.Market,
				Type: req.InstanceTypes[0], LaunchTime: w.clock.Now(), State: cloud.Running}
			w.instances[id] = in
			res.Instances = append(res.Instances, in)
			w.nodes[name] = &policy.Node{Name: name, NodeGroup: req.Group, InstanceID: id, Zone: l.Zone,
				Market: policy.Market(l.Market), InstanceType: in.Type, Ready: !w.neverReady, Created: w.clock.Now(),
				Allocatable: policy.Resources{MilliCPU: 2000, Memory: 2 << 30, Pods: 110}, Annotations: map[string]string{}}
		}
	}
	return res, nil
}

func (w *fakeWorld) Terminate(_ context.Context, group string, ids []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record(fmt.Sprintf("Terminate %v", ids))
	for _, id := range ids {
		in := w.instances[id]
		in.State = cloud.Terminated
		w.instances[id] = in
	}
	return nil
}

func (w *fakeWorld) List(_ context.Context, group string) ([]cloud.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []cloud.Instance
	for _, in := range w.instances {
		if in.Group == group {
			out = append(out, in)
		}
	}
	return out, nil
}

// Notifier

func (w *fakeWorld) Send(_ context.Context, n notify.Notice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notices = append(w.notices, n)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
