package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/nodeexporter"
	"github.com/smartscale/smartscale/internal/decision"
)

const appName = "demoapp"

// ensureApp creates the demo app's Deployment (kwok runs its pods).
func (d *demo) ensureApp(ctx context.Context) error {
	labels := map[string]string{"app": appName}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{nodeexporter.AnnotationCPUUsage: "0"}},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{harness.GroupLabel: "workers"},
					Containers: []corev1.Container{{Name: "demoapp", Image: "demoapp:local",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
					TerminationGracePeriodSeconds: new(int64),
				},
			},
		},
	}
	_, err := d.st.Client().AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{})
	return err
}

// scaleApp sets the app's replicas and the CPU each pod uses. The usage
// goes on the pods, not the template (a template change would roll every
// pod); annotatePods keeps new pods in step.
func (d *demo) scaleApp(ctx context.Context, replicas int32, usage string) error {
	d.mu.Lock()
	d.usage = usage
	d.mu.Unlock()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := d.st.Client().AppsV1().Deployments("default").Patch(ctx, appName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return err
	}
	return d.annotatePods(ctx)
}

// annotatePods sets the current CPU usage on every app pod that lacks it.
func (d *demo) annotatePods(ctx context.Context) error {
	d.mu.Lock()
	usage := d.usage
	d.mu.Unlock()
	pods, err := d.st.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + appName})
	if err != nil {
		return err
	}
	annotate := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, nodeexporter.AnnotationCPUUsage, usage)
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Annotations[nodeexporter.AnnotationCPUUsage] == usage {
			continue
		}
		if _, err := d.st.Client().CoreV1().Pods("default").Patch(ctx, p.Name, types.MergePatchType, []byte(annotate), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// waitNodes waits until cond holds for group workers.
func (d *demo) waitNodes(ctx context.Context, cond func([]harness.Node) bool) error {
	return harness.Eventually(ctx, 24*time.Hour, 250*time.Millisecond, "node group workers", func(ctx context.Context) (bool, error) {
		n, err := harness.GroupNodes(ctx, d.st.Client(), "workers")
		return err == nil && cond(n), nil
	})
}

// watch prints, as they happen: SmartScale alerts changing state in
// Prometheus, decisions, node changes and Slack notices.
func (d *demo) watch(ctx context.Context) {
	alerts := map[string]string{}
	seenDecisions := map[string]bool{}
	lastNodes := ""
	slackSeen := 0
	for ctx.Err() == nil {
		if cur, err := d.alertStates(ctx); err == nil {
			for name, state := range cur {
				if alerts[name] != state {
					d.say("prometheus: %-26s %s", name, state)
				}
			}
			for name := range alerts {
				if _, ok := cur[name]; !ok {
					d.say("prometheus: %-26s resolved", name)
				}
			}
			alerts = cur
		}
		if recs, err := d.sv.Decisions(ctx, "workers"); err == nil {
			for i := len(recs) - 1; i >= 0; i-- {
				r := recs[i]
				if seenDecisions[r.ID] {
					continue
				}
				seenDecisions[r.ID] = true
				d.say("smartscale: %s", describe(r))
			}
		}
		if nodes, err := harness.GroupNodes(ctx, d.st.Client(), "workers"); err == nil {
			if s := fmt.Sprint(nodes); s != lastNodes {
				d.say("nodes (%d): %s", len(nodes), s)
				lastNodes = s
			}
		}
		if err := d.annotatePods(ctx); err != nil && ctx.Err() == nil {
			d.say("annotating app pods: %v", err)
		}
		if msgs := d.slack.Messages(); len(msgs) > slackSeen {
			for _, m := range msgs[slackSeen:] {
				d.say("slack: %s", slackText(m))
			}
			slackSeen = len(msgs)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func describe(r decision.Record) string {
	var alerts []string
	for _, s := range r.Signals {
		alerts = append(alerts, s.AlertName)
	}
	s := fmt.Sprintf("%s %s", r.Action, r.Outcome)
	if r.Count > 0 {
		s += fmt.Sprintf(" count=%d", r.Count)
	}
	if r.Node != "" {
		s += " node=" + r.Node
	}
	if len(alerts) > 0 {
		s += " alerts=" + strings.Join(alerts, ",")
	}
	if len(r.Reasons) > 0 {
		s += "\n             why: " + strings.Join(r.Reasons, "\n             why: ")
	}
	return s
}

// slackText is the notice's fallback text (what a phone shows).
func slackText(m harness.SlackMessage) string {
	if t, ok := m.Body["text"].(string); ok && t != "" {
		return t
	}
	return string(m.Raw)
}

// alertStates returns the state of every SmartScale alert (those with a
// smartscale_action label) Prometheus has active.
func (d *demo) alertStates(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.st.PrometheusURL+"/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range body.Data.Alerts {
		if a.Labels["smartscale_action"] == "" {
			continue
		}
		if name := a.Labels["alertname"]; out[name] != "firing" {
			out[name] = a.State
		}
	}
	return out, nil
}

// summary prints the decisions that acted, oldest first.
func (d *demo) summary(ctx context.Context) {
	recs, err := d.sv.Decisions(ctx, "workers")
	if err != nil {
		d.say("decisions: %v", err)
		return
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	d.say("what SmartScale did (GET /v1/decisions, actions only):")
	for _, r := range recs {
		if r.Outcome == decision.Ignored {
			continue
		}
		fmt.Fprintf(d.out, "           %s  %-12s %-10s %s\n", r.Time.Format("15:04:05"), r.Action, r.Outcome, mainReason(r))
	}
}

// mainReason is the reason that says what was done: the chosen node of a
// scale-down (listed after the nodes that were passed over), otherwise
// the first.
func mainReason(r decision.Record) string {
	for _, s := range r.Reasons {
		if strings.HasPrefix(s, "scale_down_candidate") {
			return s
		}
	}
	if len(r.Reasons) == 0 {
		return ""
	}
	return r.Reasons[0]
}
