package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/synchrosync/synchro"
)

// Defaults of Config.
const (
	DefaultPlatform       = "go"
	DefaultPushBatch      = 100
	DefaultPullLimit      = 500
	DefaultSnapshotLimit  = 1000
	DefaultPullWait       = 25 * time.Second
	DefaultPollInterval   = 10 * time.Second
	DefaultChangeCheck    = 200 * time.Millisecond
	DefaultRequestTimeout = 30 * time.Second
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = time.Minute
)

// maxRecords is the server's bound on the records of a push, a pull page
// and a snapshot page.
const maxRecords = 1000

// Config configures Open. ServerURL and Path are required; every other
// field has a default.
type Config struct {
	// ServerURL is where the server's sync endpoints are: the client
	// sends POST ServerURL+"/sync/pull" and so on (the handler of package
	// synchrohttp mounted at "/sync/" of that URL).
	ServerURL string
	// Path is the local SQLite file, created when missing. One Client at
	// a time may use a file.
	Path string
	// Token returns the token of a request, sent as "Authorization:
	// Bearer <token>"; it is called for every request, so it may refresh
	// it. Nil, or an empty token: no Authorization header.
	Token func(ctx context.Context) (string, error)
	// HTTPClient sends the requests. Defaults to an http.Client of its
	// own without a Timeout (RequestTimeout bounds each request); one
	// with a Timeout must allow PullWait more.
	HTTPClient *http.Client
	// ClientID names this installation to the server. Defaults to the id
	// stored in the file, or else a new random one, stored there. A file
	// that holds another id is refused.
	ClientID string
	// ClientName is a name of the device for the server's records.
	// Optional.
	ClientName string
	// Platform is sent at registration. Defaults to DefaultPlatform.
	Platform string
	// AppVersion is the application's semantic version, sent at
	// registration and as the X-App-Version header of every request
	// (the server may refuse versions below its minimum:
	// ErrUpgradeRequired). Optional unless the server sets a minimum.
	AppVersion string
	// Contract, when the file has no tables yet, creates them before the
	// first contact with the server (a contract bundled with the
	// application), so that it can write offline from its first start.
	// The server's contract replaces it at the first sync (see "Schema
	// changes" in the package documentation). Optional.
	Contract *synchro.SchemaResponse
	// PushBatch is the most records a push sends. Defaults to
	// DefaultPushBatch; 1 to 1000.
	PushBatch int
	// PullLimit is the most records a pull page asks for. Defaults to
	// DefaultPullLimit; 1 to 1000.
	PullLimit int
	// SnapshotLimit is the most records a snapshot page asks for.
	// Defaults to DefaultSnapshotLimit; 1 to 1000.
	SnapshotLimit int
	// PullWait is how long Run's pulls ask the server to wait for a
	// change when there is nothing to pull (POST /sync/pull?wait=...).
	// Defaults to DefaultPullWait; at most 60 s; negative: Run never asks
	// to wait and polls every PollInterval.
	PullWait time.Duration
	// PollInterval is the least time between the starts of two pulls Run
	// makes while idle, for servers that answer at once (no live sync, or
	// a shorter wait than asked). Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// ChangeCheck is how often Run looks for local changes while it
	// waits, to push them. Defaults to DefaultChangeCheck.
	ChangeCheck time.Duration
	// RequestTimeout bounds each request (plus its wait). Defaults to
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound Run's waits after a failed round
	// (doubling from MinBackoff, with jitter), unless the server asks
	// for another wait with Retry-After. Default to DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnEvent receives the client's events (see Event), in order, from
	// the goroutine of Sync or Run, never while the client holds its
	// locks, so it may call the client's methods. It should return
	// quickly. Optional.
	OnEvent func(Event)
	// Logger receives the client's logs. Defaults to none.
	Logger *slog.Logger
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Platform == "" {
		cfg.Platform = DefaultPlatform
	}
	for _, f := range []struct {
		v   *int
		def int
	}{{&cfg.PushBatch, DefaultPushBatch}, {&cfg.PullLimit, DefaultPullLimit}, {&cfg.SnapshotLimit, DefaultSnapshotLimit}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	set(&cfg.PullWait, DefaultPullWait)
	set(&cfg.PollInterval, DefaultPollInterval)
	set(&cfg.ChangeCheck, DefaultChangeCheck)
	set(&cfg.RequestTimeout, DefaultRequestTimeout)
	set(&cfg.MinBackoff, DefaultMinBackoff)
	set(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// validate checks cfg after withDefaults.
func (cfg *Config) validate() error {
	if cfg.ServerURL == "" {
		return errors.New("synchro client: Config.ServerURL is required")
	}
	if u, err := url.Parse(cfg.ServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("synchro client: Config.ServerURL %q is not an http or https URL", cfg.ServerURL)
	}
	if cfg.Path == "" {
		return errors.New("synchro client: Config.Path is required")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"PushBatch", cfg.PushBatch}, {"PullLimit", cfg.PullLimit}, {"SnapshotLimit", cfg.SnapshotLimit}} {
		if f.v < 1 || f.v > maxRecords {
			return fmt.Errorf("synchro client: Config.%s must be 1 to %d, got %d", f.name, maxRecords, f.v)
		}
	}
	if cfg.PullWait > synchro.MaxPullWait {
		return fmt.Errorf("synchro client: Config.PullWait must be at most %v, got %v", synchro.MaxPullWait, cfg.PullWait)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", cfg.PollInterval}, {"ChangeCheck", cfg.ChangeCheck}, {"RequestTimeout", cfg.RequestTimeout},
		{"MinBackoff", cfg.MinBackoff}, {"MaxBackoff", cfg.MaxBackoff}} {
		if f.v < 0 {
			return fmt.Errorf("synchro client: Config.%s must not be negative, got %v", f.name, f.v)
		}
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return fmt.Errorf("synchro client: Config.MaxBackoff %v is below MinBackoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	return nil
}
