// Command metrics is an example of exporting synchro's metrics to
// Prometheus: an engine and a change-capture consumer whose MeterProvider
// is the OpenTelemetry SDK reading through the Prometheus exporter, the
// sync API under /sync/, the metrics under /metrics and the health
// endpoints of synchrohttp.Health under /healthz and /readyz.
//
//	cd examples/metrics
//	SYNCHRO_DATABASE_URL=postgres://postgres@127.0.0.1/metrics_example go run .
//	curl -s http://127.0.0.1:9464/metrics | grep '^synchro_'
//	curl -s http://127.0.0.1:9464/readyz
//
// main_test.go runs it against a test database, syncs a note through it
// and reads the exporter's output (go test ./... in this directory).
// It is a module of its own (go.mod here, with a replace directive to the
// repository root), so that the SDK, the exporter and the Prometheus
// client stay out of synchro's go.mod: synchro itself needs only the
// OpenTelemetry metric API, and an application pays for an SDK and an
// exporter only when it chooses them. docs/metrics.md lists the metrics.
//
// # The database
//
// SYNCHRO_DATABASE_URL names a superuser on a server with
// wal_level=logical; give the example a database of its own. It creates
// there the table notes, the schema synchro (migrations.Migrate), the
// replication slot synchro_slot and the publication synchro_pub. The slot
// stays after the example exits and holds WAL back until it is dropped:
//
//	SELECT pg_drop_replication_slot('synchro_slot');
//
// For brevity everything runs as that superuser; examples/todo shows an
// engine under row-level security.
//
// # DEMO-ONLY AUTHENTICATION
//
// The server believes whatever user the header "Authorization: Bearer
// <user>" names. It listens on 127.0.0.1 by default; never expose it.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/migrations"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// schema is the application's table, synced per user.
const schema = `
CREATE TABLE IF NOT EXISTS notes (
	id         uuid PRIMARY KEY,
	user_id    text NOT NULL,
	body       text NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
)`

func main() {
	addr := flag.String("addr", "127.0.0.1:9464", "address to serve /sync/, /metrics, /healthz and /readyz on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := errors.New("set SYNCHRO_DATABASE_URL to a superuser URL of a server with wal_level=logical")
	if dsn := os.Getenv("SYNCHRO_DATABASE_URL"); dsn != "" {
		var ln net.Listener
		if ln, err = net.Listen("tcp", *addr); err == nil {
			err = run(ctx, dsn, ln)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "metrics example:", err)
		os.Exit(1)
	}
}

// run serves the example on ln, with dsn (a superuser URL) for the
// database, until ctx ends, the server fails or change capture stops. It
// closes ln.
func run(ctx context.Context, dsn string, ln net.Listener) error {
	defer ln.Close() // closed already when the server ran; then a no-op
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	err = migrations.Migrate(ctx, db)
	if err == nil {
		_, err = db.ExecContext(ctx, schema)
	}
	if err != nil {
		return fmt.Errorf("preparing the database: %w", err)
	}
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})

	// The OpenTelemetry SDK, read by the Prometheus exporter. The exporter
	// registers with a Prometheus registry of the example's own (served
	// by promhttp below) rather than the default one, so that run can be
	// called more than once in a process, as the test does.
	registry := promclient.NewRegistry()
	exporter, err := prometheus.New(prometheus.WithRegisterer(registry))
	if err != nil {
		return err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = provider.Shutdown(context.Background()) }()

	engine, err := synchro.NewEngine(synchro.Config{
		DB:            db,
		Registry:      reg,
		Compactor:     &synchro.CompactorConfig{},
		MeterProvider: provider,
	})
	if err != nil {
		return err
	}
	background, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	engine.StartCompaction(background, time.Hour)

	consumer, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString:    dsn,
		Registry:      reg,
		ChangelogDB:   db,
		MeterProvider: provider,
	})
	if err != nil {
		return err
	}
	captured := make(chan error, 1)
	go func() { captured <- consumer.Start(background) }()

	handler, err := synchrohttp.New(synchrohttp.Config{Engine: engine, UserID: demoUserID})
	if err != nil {
		return err
	}
	// Liveness and readiness: /readyz answers 503 while nobody captures
	// changes (see "Health" in synchrohttp's documentation).
	health, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{Engine: engine, Consumer: consumer})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/sync/", handler)
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", health)
	mux.Handle("/readyz", health)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	slog.Info("serving", "sync", base+"/sync/", "metrics", base+"/metrics", "ready", base+"/readyz")

	captureDone := false
	select {
	case <-ctx.Done():
	case err = <-served:
	case err = <-captured:
		captureDone = true
		err = fmt.Errorf("change capture stopped: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(shutdown))
	stopBackground()
	if !captureDone {
		<-captured // Start returns once background ends
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// demoUserID is the DEMO-ONLY authentication: the header
// "Authorization: Bearer <user>" names the user, and the server believes
// it. A real application verifies a session or a token instead.
func demoUserID(r *http.Request) (string, error) {
	scheme, user, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(user) == "" {
		return "", errors.New(`want the header "Authorization: Bearer <user>"`)
	}
	return strings.TrimSpace(user), nil
}
