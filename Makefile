# The two commands a new user runs: `make dev` and `make test`.
GO ?= go
FUZZTIME ?= 30s

.PHONY: dev test test-unit lint fuzz build clean screenshots record-histories bench chaos cluster cluster-down cluster-test

dev: ## the whole local stack; Ctrl-C stops it (same as: go run ./starter dev); starts PostgreSQL first if none answers
	@pg=$$(tools/ensure.sh postgres) && eval "$$pg" && $(GO) build -o bin/starter ./starter && bin/starter dev

test: ## unit and integration tests; starts (or installs) PostgreSQL and Chromium first if missing, and its own Temporal
	@pg=$$(tools/ensure.sh postgres) && eval "$$pg" && tools/ensure.sh chromium && $(GO) test -count=1 -timeout 45m ./...

test-unit: ## the fast tests: no PostgreSQL, no Temporal server (under a minute)
	$(GO) test -count=1 -short ./...

screenshots: ## the README's screenshots, taken by the browser test (needs chromium)
	REBOOK_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestDashboardInTheBrowser$$' ./internal/e2e

# Each path a request can take, run end to end on a dev server, leaves up
# to two histories of each workflow type and final state for the replay
# test. Record with each release that changes a workflow, and commit them.
HISTORIES ?= workflows/testdata/histories/$(shell git rev-parse --short HEAD)
record-histories: ## record histories of every workflow path into $(HISTORIES) (needs PostgreSQL)
	rm -rf $(HISTORIES)
	E2E_REQUESTS=20 REBOOK_RECORD_HISTORIES=$(CURDIR)/$(HISTORIES) $(GO) test -count=1 -timeout 20m \
		-run '^(TestTwoHundredRequestsEndToEnd|TestPASFeedClosesRequests|TestRevokedGrantPausesThenResumes|TestOverdueRequestEscalatesAndHistoriesReplay|TestReprocessFailedRequests|TestSocketModePressesReachTheWorkflowOnce|TestHazardForgedFeedMessagesCloseNothing|TestHazardStaleFeedUpdatesChangeNothing|TestHazardEarlyFeedUpdateIsKeptUntilItsRequestIsRouted|TestHazardPKBOutageDuringIntakePausesRequests)$$' ./internal/e2e
	$(GO) test -count=1 -run Replay ./workflows

BENCH_REQUESTS ?= 2000
bench: ## Rebook against the floor of bare Temporal workflows (needs PostgreSQL; several minutes); figures in bench.json
	$(GO) build -o bin/worker ./worker
	$(GO) build -o bin/starter ./starter
	bin/starter bench --requests $(BENCH_REQUESTS) --json bench.json

CHAOS_REQUESTS ?= 1000
CHAOS_TEMPORAL ?= dev
chaos: ## requests through the real stack while it breaks it; fails unless each completes once (about 6 minutes); CHAOS_TEMPORAL=cluster: on make cluster, 3 workers, 2 front doors
	$(GO) build -o bin/worker ./worker
	$(GO) build -o bin/starter ./starter
	bin/starter chaos --requests $(CHAOS_REQUESTS) --temporal $(CHAOS_TEMPORAL) --json chaos.json

cluster: ## a production-shaped Temporal here: the pinned server on PostgreSQL, each service its own process, and the Web UI (tools/cluster.sh)
	@tools/cluster.sh up

cluster-down: ## stop what make cluster started (its databases stay)
	@tools/cluster.sh down

cluster-test: ## Rebook on the cluster: requests through three workers while each Temporal service is killed in turn
	@tools/cluster.sh up && REBOOK_E2E_TEMPORAL=127.0.0.1:7233 $(GO) test -count=1 -timeout 20m -run '^(TestClusterSurvivesServiceRestarts|TestWorkerVersioningCarriesWaitingRequests)$$' ./internal/e2e; \
		rc=$$?; tools/cluster.sh down; exit $$rc

lint: ## gofmt, go vet, staticcheck and Temporal's determinism checker
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) tool -modfile=tools/lint/go.mod staticcheck ./...
	$(GO) tool -modfile=tools/lint/go.mod workflowcheck ./...

# Minimizing each new interesting input for the default 60 s starves the
# search on two cores (16k executions in 30 s instead of about 800k).
fuzz: ## each fuzz target for $(FUZZTIME)
	$(GO) test ./internal/subject -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s
	$(GO) test ./internal/nhsnumber -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s

build: ## binaries into bin/
	$(GO) build -o bin/ ./starter ./worker
	$(GO) build -o bin/temporal -modfile=tools/go.mod github.com/temporalio/cli/cmd/temporal

clean:
	rm -rf bin .rebook-dev
