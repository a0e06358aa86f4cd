package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	awscloud "github.com/smartscale/smartscale/internal/cloud/aws"
	"github.com/smartscale/smartscale/internal/cloud/kwok"
	cwsink "github.com/smartscale/smartscale/internal/cloudwatch"
	"github.com/smartscale/smartscale/internal/config"
	"github.com/smartscale/smartscale/internal/interruption"
	"github.com/smartscale/smartscale/internal/kube"
	"github.com/smartscale/smartscale/internal/notify"
	"github.com/smartscale/smartscale/internal/scaler"
	"github.com/smartscale/smartscale/internal/server"
	"github.com/smartscale/smartscale/internal/state"
	"github.com/smartscale/smartscale/internal/state/dynamo"
	"github.com/smartscale/smartscale/internal/state/memory"
)

const envSlackWebhookURL = "SMARTSCALE_SLACK_WEBHOOK_URL"

// app is everything serve runs, wired from the configuration.
type app struct {
	scaler  *scaler.Scaler
	poller  *interruption.Poller
	log     *slog.Logger
	cluster *kube.Cluster
	ready   map[string]server.Check
	fanout  *notify.Fanout

	// sink publishes to CloudWatch when serve has --cloudwatch-namespace.
	sink     *cwsink.Sink
	stopSink context.CancelFunc
	sinkDone chan struct{}
}

// wire builds the scaler and its dependencies. Nothing acts until run.
func wire(ctx context.Context, cfg config.Config, reg *prometheus.Registry, log *slog.Logger) (*app, error) {
	opts := state.Options{Logger: log}
	var store scaler.Store
	var storeCheck server.Check
	switch cfg.State.Backend {
	case "dynamodb":
		st, err := dynamo.Open(ctx, cfg.State.DynamoDB, cfg.ClusterID, opts)
		if err != nil {
			return nil, fmt.Errorf("state.dynamodb: %w", err)
		}
		store = st
		storeCheck = func(ctx context.Context) error {
			_, err := st.Group(ctx, cfg.NodeGroups[0].Name)
			return err
		}
	default:
		store = memory.New(opts)
		log.Warn("state backend is memory: one replica only, and a restart forgets locks, cooldowns and the journal")
	}

	restCfg, err := kube.RESTConfig(cfg.Kube)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	client, err := kubernetes.NewForConfig(kube.Tune(restCfg))
	if err != nil {
		return nil, fmt.Errorf("kube client: %w", err)
	}
	cluster, err := kube.New(client, kube.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}

	// Both providers answer Find, which the interruption poller uses to
	// tell our instances from others'.
	var provider interface {
		scaler.Provider
		interruption.Owner
	}
	switch cfg.Cloud.Provider {
	case "aws":
		p, err := awscloud.NewFromConfig(ctx, cfg.Cloud.AWS, awscloud.Options{Logger: log, Registerer: reg})
		if err != nil {
			return nil, fmt.Errorf("cloud.aws: %w", err)
		}
		provider = p
	default:
		provider = kwok.New(client, kwok.Options{Logger: log})
	}

	notifiers, err := buildNotifiers(ctx, cfg.Notify)
	if err != nil {
		return nil, err
	}
	fanout := notify.NewFanout(reg, log, 10*time.Second, notifiers...)

	sc, err := scaler.New(store, cluster, provider, fanout, scaler.Options{
		ClusterID: cfg.ClusterID, Groups: cfg.NodeGroups, DryRun: cfg.DryRun, Pricing: cfg.Pricing,
		DashboardURL: cfg.Notify.DashboardURL, Logger: log, Registry: reg,
		LockTTL: cfg.Scaler.LockTTL.D(), ReconcileInterval: cfg.Scaler.ReconcileInterval.D(),
		DedupeTTL: cfg.Scaler.DedupeTTL.D(),
	})
	if err != nil {
		return nil, err
	}
	ready := map[string]server.Check{
		"kube": func(context.Context) error {
			if !cluster.HasSynced() {
				return errors.New("informer caches not synced")
			}
			return nil
		},
	}
	if storeCheck != nil {
		ready["state"] = storeCheck
	}
	a := &app{scaler: sc, cluster: cluster, ready: ready, fanout: fanout, log: log}
	// The kwok provider polls too when given a queue: the end-to-end tests
	// feed it real EventBridge documents through a stubbed SQS endpoint
	// (AWS_ENDPOINT_URL_SQS).
	if cfg.Cloud.AWS.InterruptionQueueURL != "" {
		a.poller, err = interruption.NewFromConfig(ctx, cfg.Cloud.AWS, provider, sc, interruption.Options{Logger: log, Registerer: reg})
		if err != nil {
			return nil, fmt.Errorf("cloud.aws.interruptionQueueURL: %w", err)
		}
	}
	return a, nil
}

func buildNotifiers(ctx context.Context, n config.Notify) ([]notify.Notifier, error) {
	var out []notify.Notifier
	url := strings.TrimSpace(os.Getenv(envSlackWebhookURL))
	if n.Slack.WebhookURLFile != "" {
		u, err := readSecretFile("notify.slack.webhookURLFile", n.Slack.WebhookURLFile)
		if err != nil {
			return nil, err
		}
		url = u
	}
	if url != "" {
		out = append(out, notify.NewSlack(url, &http.Client{Timeout: 10 * time.Second}))
	}
	if n.SNS.TopicARN != "" {
		awsCfg, err := loadAWSConfig(ctx, n.SNS.Region)
		if err != nil {
			return nil, fmt.Errorf("notify.sns: %w", err)
		}
		client := sns.NewFromConfig(awsCfg, func(o *sns.Options) {
			if n.SNS.Endpoint != "" {
				o.BaseEndpoint = &n.SNS.Endpoint
			}
		})
		out = append(out, notify.NewSNS(client, n.SNS.TopicARN))
	}
	return out, nil
}

// run starts the informers and the reconciler; they stop with ctx. The
// CloudWatch sink runs until close, so its last publish comes after the
// scaler has stopped and holds the final figures.
func (a *app) run(ctx context.Context) {
	if a.sink != nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.stopSink, a.sinkDone = cancel, make(chan struct{})
		go func() {
			defer close(a.sinkDone)
			a.sink.Run(sctx)
		}()
	}
	a.cluster.Start(ctx)
	go func() {
		if err := a.cluster.WaitForSync(ctx); err != nil {
			return
		}
		if a.poller != nil {
			go func() {
				if err := a.poller.Run(ctx); err != nil && ctx.Err() == nil {
					a.log.Error("interruption poller stopped", "reason", err.Error())
				}
			}()
		}
		a.scaler.RunReconciler(ctx)
	}()
}

// close stops running actions (left journaled for the next replica),
// flushes notices, makes the CloudWatch sink's final publish (bounded by
// its FinalTimeout) and stops the informers.
func (a *app) close() {
	a.scaler.Close()
	a.fanout.Wait()
	if a.stopSink != nil {
		a.stopSink()
		<-a.sinkDone
	}
	a.cluster.Close()
}
