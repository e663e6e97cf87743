// Package app builds Rebook's parts from its configuration: the Temporal
// client (with the payload codec), the PKB client on the stored grant, the
// Slack client and the activities. The worker, the starter and the
// integration tests all build them the same way.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// Temporal dials Temporal with the codec, so every payload is sealed.
func Temporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	opts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: tlog.NewStructuredLogger(log)}
	if cfg.EncryptionKey != nil {
		dc, err := codec.DataConverter(cfg.EncryptionKey)
		if err != nil {
			return nil, err
		}
		opts.DataConverter = dc
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// PKB is the PKB client, reading its token from the store and asking the
// TokenKeeper for a refresh when the token runs out or PKB refuses it.
func PKB(cfg config.Config, st *store.Store, tc client.Client) (*pkb.Client, error) {
	return pkb.New(pkb.Options{
		BaseURL: cfg.PKBBaseURL, FHIRBaseURL: cfg.PKBFHIRBaseURL,
		Tokens: &pkbauth.Tokens{Store: st, ClientID: cfg.PKBClientID, Nudge: func(ctx context.Context) error {
			return tc.SignalWorkflow(ctx, workflows.TokenKeeperID(cfg.PKBClientID), "", workflows.SignalRefreshNow, nil)
		}},
	})
}

// StartTokenKeeper starts the TokenKeeper for this PKB client, or leaves
// the running one alone.
func StartTokenKeeper(ctx context.Context, tc client.Client, cfg config.Config) error {
	_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.TokenKeeperID(cfg.PKBClientID), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.TokenKeeperWorkflow, workflows.KeeperInput{ClientID: cfg.PKBClientID})
	if err != nil {
		return fmt.Errorf("start token keeper: %w", err)
	}
	return nil
}

// OAuth is PKB's OAuth configuration for this deployment.
func OAuth(cfg config.Config) *pkb.OAuthConfig {
	return pkb.OAuth(cfg.PKBBaseURL, cfg.PKBClientID, cfg.PKBClientSecret, cfg.PKBRedirectURL)
}

// Slack is the Slack Web API client.
func Slack(cfg config.Config) *slackmsg.Client {
	return slackmsg.New(cfg.SlackBotToken, cfg.SlackAPIURL)
}

// Activities wires the activities.
func Activities(cfg config.Config, st *store.Store, tc client.Client) (*activities.Activities, error) {
	p, err := PKB(cfg, st, tc)
	if err != nil {
		return nil, err
	}
	return &activities.Activities{
		PKB: p, Store: st, Slack: Slack(cfg), Temporal: tc, OAuth: OAuth(cfg),
		TriageChannel: cfg.TriageChannel, AdminChannel: cfg.AdminChannel, PublicURL: cfg.PublicURL,
	}, nil
}

// WorkerNeeds are the settings the worker cannot run without.
var WorkerNeeds = []string{config.PKBBaseURL, config.PKBFHIRBaseURL, config.PKBClientID, config.PKBClientSecret, config.PKBRedirectURL, config.EncryptionKey, config.SlackBotToken}

// RegisterSearchAttributes adds Rebook's search attributes to the
// namespace, skipping those already there.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string, attrs map[string]string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	add := map[string]enums.IndexedValueType{}
	for name, typ := range attrs {
		if _, ok := have.CustomAttributes[name]; ok {
			continue
		}
		v, ok := enums.IndexedValueType_shorthandValue[typ]
		if !ok {
			return fmt.Errorf("search attribute %s: unknown type %s", name, typ)
		}
		add[name] = enums.IndexedValueType(v)
	}
	if len(add) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: add})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// Worker makes a worker on Rebook's task queue with every workflow and
// activity registered.
func Worker(cfg config.Config, st *store.Store, tc client.Client) (worker.Worker, error) {
	acts, err := Activities(cfg, st, tc)
	if err != nil {
		return nil, err
	}
	w := worker.New(tc, workflows.TaskQueue, worker.Options{})
	workflows.Register(w)
	activities.Register(w, acts)
	return w, nil
}
