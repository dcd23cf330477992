package synchrohttp_test

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/synchrosync/synchro"
	"github.com/synchrosync/synchro/synchrohttp"
	"github.com/synchrosync/synchro/wal"
)

// authenticate stands in for the application's own authentication, such as
// verifying a session cookie or a bearer token.
func authenticate(r *http.Request) (string, error) {
	return "", errors.New("no session")
}

// Example mounts the sync endpoints under /api/sync/ next to the
// application's own routes.
func Example() {
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	engine, err := synchro.NewEngine(synchro.Config{DB: db, Registry: reg})
	if err != nil {
		log.Print(err)
		return
	}
	h, err := synchrohttp.New(synchrohttp.Config{
		Engine: engine,
		UserID: authenticate,
	})
	if err != nil {
		log.Print(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("/api/sync/", h) // POST /api/sync/pull, GET /api/sync/schema, ...
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Print(srv.ListenAndServe())
}

// ExampleNewHealth serves liveness and readiness next to the sync
// endpoints, in a process that also runs the change-capture consumer.
func ExampleNewHealth() {
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	reg := synchro.NewRegistry()
	reg.Register(&synchro.TableConfig{TableName: "notes", OwnerColumn: "user_id"})
	engine, err := synchro.NewEngine(synchro.Config{DB: db, Registry: reg})
	if err != nil {
		log.Print(err)
		return
	}
	consumer, err := wal.NewConsumer(wal.ConsumerConfig{
		ConnString:  os.Getenv("REPLICATION_DATABASE_URL"),
		Registry:    reg,
		ChangelogDB: db,
	})
	if err != nil {
		log.Print(err)
		return
	}
	go func() { log.Print(consumer.Start(context.Background())) }()

	health, err := synchrohttp.NewHealth(synchrohttp.HealthConfig{
		Engine:   engine,
		Consumer: consumer, // nil in a process that runs no consumer
		Capture:  synchro.CaptureOptions{MaxLagTime: 2 * time.Minute},
	})
	if err != nil {
		log.Print(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", health) // 200 while the process serves
	mux.Handle("/readyz", health)  // 503 while nobody captures, or capture falls behind
	srv := &http.Server{Addr: ":8081", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Print(srv.ListenAndServe())
}
