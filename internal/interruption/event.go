// Package interruption turns EC2's spot interruption, rebalance and state
// change events into interruptions the scaler acts on.
//
// EventBridge rules (from infra/) put the events on an SQS queue; a Poller
// long-polls it, parses each message body as an EventBridge event, keeps only
// instances SmartScale manages (asked through Owner), and hands each
// interruption to a Handler. A message is deleted only once the handler
// accepted it, so a crash or a handler error means redelivery after the
// queue's visibility timeout: handlers must be idempotent (EventBridge also
// delivers at least once). Messages that are not interruptions, that concern
// instances that are not ours, or that cannot be parsed are deleted (the
// last with a log line) so they are not retried forever.
package interruption

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smartscale/smartscale/internal/cloud"
)

// Kind says what EC2 announced.
type Kind string

// Kinds; stable, they are metric label values.
const (
	// SpotInterruption: EC2 reclaims the spot instance in two minutes.
	SpotInterruption Kind = "spot_interruption"
	// Rebalance: the spot instance is at elevated risk of interruption; no
	// deadline yet, often the first sign.
	Rebalance Kind = "rebalance_recommendation"
	// StateChange: the instance is stopping or gone (shutting-down, terminated,
	// stopping, stopped), whoever caused it.
	StateChange Kind = "state_change"
)

// Event detail types, as EventBridge names them.
const (
	detailSpot      = "EC2 Spot Instance Interruption Warning"
	detailRebalance = "EC2 Instance Rebalance Recommendation"
	detailState     = "EC2 Instance State-change Notification"
)

// SpotWarning is how long before reclaiming an instance EC2 warns.
const SpotWarning = 2 * time.Minute

// Interruption is one instance about to go away (or gone).
type Interruption struct {
	Kind       Kind   `json:"kind"`
	InstanceID string `json:"instance"`
	// Group is the instance's node group, from the provider.
	Group string `json:"nodegroup"`
	// Instance is what the provider knows of it (zone, market, type…).
	Instance cloud.Instance `json:"instanceInfo"`
	// Deadline is when the instance stops running: the event time plus two
	// minutes for a spot warning, the event time for a state change, zero
	// for a rebalance recommendation (no deadline announced).
	Deadline time.Time `json:"deadline,omitzero"`
	// Action is the spot warning's instance-action (terminate, stop,
	// hibernate); State the state-change's new state.
	Action string `json:"action,omitempty"`
	State  string `json:"state,omitempty"`
	// EventID and EventTime identify the EventBridge event (for dedupe and logs).
	EventID   string    `json:"eventID"`
	EventTime time.Time `json:"eventTime"`
}

// ErrMalformed marks a message that is not a usable EC2 event.
var ErrMalformed = errors.New("malformed event")

// event is an EventBridge event envelope.
type event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type detail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
	State          string `json:"state"`
}

// endingStates are the state changes that take a node away.
var endingStates = map[string]bool{"shutting-down": true, "terminated": true, "stopping": true, "stopped": true}

// Parse reads one EventBridge event. ok is false for a well-formed event
// that announces nothing to act on (a state change to pending or running);
// the error wraps ErrMalformed when body is not a usable EC2 event.
func Parse(body []byte) (in Interruption, ok bool, err error) {
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		return in, false, fmt.Errorf("%w: not JSON: %w", ErrMalformed, err)
	}
	if ev.Source != "aws.ec2" {
		return in, false, fmt.Errorf("%w: source %q is not aws.ec2", ErrMalformed, ev.Source)
	}
	when, err := time.Parse(time.RFC3339, ev.Time)
	if err != nil {
		return in, false, fmt.Errorf("%w: time %q: %w", ErrMalformed, ev.Time, err)
	}
	var d detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return in, false, fmt.Errorf("%w: detail: %w", ErrMalformed, err)
	}
	if !strings.HasPrefix(d.InstanceID, "i-") {
		return in, false, fmt.Errorf("%w: detail instance-id %q is not an instance id", ErrMalformed, d.InstanceID)
	}
	in = Interruption{InstanceID: d.InstanceID, EventID: ev.ID, EventTime: when}
	switch ev.DetailType {
	case detailSpot:
		if d.InstanceAction == "" {
			return in, false, fmt.Errorf("%w: spot warning without instance-action", ErrMalformed)
		}
		in.Kind, in.Action, in.Deadline = SpotInterruption, d.InstanceAction, when.Add(SpotWarning)
	case detailRebalance:
		in.Kind = Rebalance
	case detailState:
		if d.State == "" {
			return in, false, fmt.Errorf("%w: state change without state", ErrMalformed)
		}
		in.Kind, in.State, in.Deadline = StateChange, d.State, when
		if !endingStates[d.State] {
			return in, false, nil
		}
	default:
		return in, false, fmt.Errorf("%w: detail-type %q is not one SmartScale subscribes to", ErrMalformed, ev.DetailType)
	}
	return in, true, nil
}
