package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartscale/smartscale/internal/cloud"
	"github.com/smartscale/smartscale/internal/config"
)

// Queue is the part of SQS the poller uses; *sqs.Client has it.
type Queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Owner says whether SmartScale manages an instance, and which group it is
// in. Both cloud providers' Find satisfy it.
type Owner interface {
	Find(ctx context.Context, instanceID string) (cloud.Instance, bool, error)
}

// Handler is the scaler's side: it accepts an interruption (journals it and
// starts the fast drain and replacement) and returns nil, or an error to have
// the message delivered again later. It may be called concurrently and more
// than once for the same event.
type Handler interface {
	HandleInterruption(ctx context.Context, in Interruption) error
}

// Message outcomes, the "result" label of smartscale_interruption_messages_total.
const (
	resultHandled      = "handled"
	resultIgnored      = "ignored"
	resultNotOurs      = "not_ours"
	resultMalformed    = "malformed"
	resultOwnerError   = "owner_error"
	resultHandlerError = "handler_error"
)

// Options configure a Poller.
type Options struct {
	QueueURL string
	// WaitTime is the long-poll wait (SQS allows 0–20 s); default 20 s.
	WaitTime time.Duration
	// MaxMessages per receive (1–10); default 10.
	MaxMessages int32
	// MinBackoff and MaxBackoff bound the pause after a failed receive;
	// defaults 1 s and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// DeleteTimeout bounds deleting an accepted message, which is tried
	// even while shutting down; default 5 s.
	DeleteTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the poller's metrics when set.
	Registerer prometheus.Registerer
}

// Poller long-polls the interruption queue until its context ends.
type Poller struct {
	q        Queue
	owner    Owner
	handler  Handler
	opts     Options
	log      *slog.Logger
	messages *prometheus.CounterVec
}

// New returns a Poller reading opts.QueueURL through q.
func New(q Queue, owner Owner, handler Handler, opts Options) (*Poller, error) {
	if q == nil || owner == nil || handler == nil {
		return nil, errors.New("interruption poller: queue, owner and handler are required")
	}
	if opts.QueueURL == "" {
		return nil, errors.New("interruption poller: queue URL is empty")
	}
	if opts.WaitTime == 0 {
		opts.WaitTime = 20 * time.Second
	}
	if opts.WaitTime < 0 || opts.WaitTime > 20*time.Second {
		return nil, fmt.Errorf("interruption poller: wait time %s is outside 0–20s", opts.WaitTime)
	}
	if opts.MaxMessages == 0 {
		opts.MaxMessages = 10
	}
	if opts.MaxMessages < 1 || opts.MaxMessages > 10 {
		return nil, fmt.Errorf("interruption poller: max messages %d is outside 1–10", opts.MaxMessages)
	}
	opts.MinBackoff = cmpOr(opts.MinBackoff, time.Second)
	opts.MaxBackoff = max(cmpOr(opts.MaxBackoff, 30*time.Second), opts.MinBackoff)
	opts.DeleteTimeout = cmpOr(opts.DeleteTimeout, 5*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Poller{q: q, owner: owner, handler: handler, opts: opts, log: opts.Logger,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartscale_interruption_messages_total",
			Help: "Interruption queue messages, by event kind and what became of them.",
		}, []string{"kind", "result"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(p.messages); err != nil {
			return nil, fmt.Errorf("interruption poller: register metrics: %w", err)
		}
	}
	return p, nil
}

// NewFromConfig builds the SQS client from the default credential chain for
// cfg.Region and polls cfg.InterruptionQueueURL. opts.QueueURL is ignored.
func NewFromConfig(ctx context.Context, cfg config.AWS, owner Owner, handler Handler, opts Options) (*Poller, error) {
	sdkCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("interruption poller: load AWS config: %w", err)
	}
	opts.QueueURL = cfg.InterruptionQueueURL
	return New(sqs.NewFromConfig(sdkCfg), owner, handler, opts)
}

// Run polls until ctx is done, then returns nil. A failed receive is logged
// and retried after a backoff that doubles up to MaxBackoff.
func (p *Poller) Run(ctx context.Context) error {
	p.log.Info("interruption poller started", "action", "interruption", "queue", p.opts.QueueURL)
	defer p.log.Info("interruption poller stopped", "action", "interruption", "queue", p.opts.QueueURL)
	backoff := p.opts.MinBackoff
	for ctx.Err() == nil {
		err := p.Poll(ctx)
		if err == nil {
			backoff = p.opts.MinBackoff
			continue
		}
		if ctx.Err() != nil {
			break
		}
		p.log.Error("receive interruption messages", "action", "interruption", "reason", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
	return nil
}

// Poll receives one batch (waiting up to WaitTime for it) and processes its
// messages concurrently. It returns an error only when the receive failed.
func (p *Poller) Poll(ctx context.Context) error {
	out, err := p.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            sdkaws.String(p.opts.QueueURL),
		MaxNumberOfMessages: p.opts.MaxMessages,
		WaitTimeSeconds:     int32(p.opts.WaitTime / time.Second),
	})
	if err != nil {
		return fmt.Errorf("ReceiveMessage %s: %w", p.opts.QueueURL, err)
	}
	var wg sync.WaitGroup
	for _, m := range out.Messages {
		wg.Go(func() { p.process(ctx, m) })
	}
	wg.Wait()
	return nil
}

// process decides one message's fate: delete it (handled, not ours, nothing
// to do, malformed) or leave it for redelivery (owner or handler failed).
func (p *Poller) process(ctx context.Context, m types.Message) {
	id := sdkaws.ToString(m.MessageId)
	in, ok, err := Parse([]byte(sdkaws.ToString(m.Body)))
	kind := string(in.Kind)
	switch {
	case err != nil:
		p.log.Warn("malformed interruption message deleted", "action", "interruption",
			"message_id", id, "reason", err.Error())
		p.finish(ctx, m, "unknown", resultMalformed)
		return
	case !ok:
		p.log.Debug("event needs no action", "action", "interruption", "message_id", id,
			"instance", in.InstanceID, "kind", kind, "state", in.State)
		p.finish(ctx, m, kind, resultIgnored)
		return
	}
	inst, ours, err := p.owner.Find(ctx, in.InstanceID)
	if err != nil {
		p.log.Error("look up interrupted instance", "action", "interruption", "message_id", id,
			"instance", in.InstanceID, "kind", kind, "reason", err.Error())
		p.messages.WithLabelValues(kind, resultOwnerError).Inc()
		return
	}
	if !ours {
		p.log.Info("interruption of an instance SmartScale does not manage", "action", "interruption",
			"message_id", id, "instance", in.InstanceID, "kind", kind, "reason", "not_ours")
		p.finish(ctx, m, kind, resultNotOurs)
		return
	}
	in.Group, in.Instance = inst.Group, inst
	log := p.log.With("action", "interruption", "message_id", id, "nodegroup", in.Group,
		"instance", in.InstanceID, "node", inst.NodeName, "kind", kind)
	if err := p.handler.HandleInterruption(ctx, in); err != nil {
		log.Error("interruption not accepted, will be redelivered", "reason", err.Error())
		p.messages.WithLabelValues(kind, resultHandlerError).Inc()
		return
	}
	log.Info("interruption accepted", "deadline", in.Deadline, "state", in.State)
	p.finish(ctx, m, kind, resultHandled)
}

// finish deletes a message whose fate is settled and counts it. The delete
// outlives ctx briefly: once the handler accepted, a shutdown should not
// cause a redelivery.
func (p *Poller) finish(ctx context.Context, m types.Message, kind, result string) {
	p.messages.WithLabelValues(kind, result).Inc()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.DeleteTimeout)
	defer cancel()
	_, err := p.q.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      sdkaws.String(p.opts.QueueURL),
		ReceiptHandle: m.ReceiptHandle,
	})
	if err != nil {
		p.log.Error("delete interruption message", "action", "interruption",
			"message_id", sdkaws.ToString(m.MessageId), "reason", err.Error())
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
