package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/synchrosync/synchro/internal/pglocal"
)

// defaultImage is the container image used unless envImage names another.
const defaultImage = "postgres:15"

// dockerAvailable reports, within a few seconds, whether a Docker engine
// answers. It returns an error wrapping errUnavailable when none does.
func dockerAvailable(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// testcontainers' provider detection has panicked on unusual
	// environments; treat that as "no Docker".
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: docker client panicked: %v", errUnavailable, r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%w: no Docker engine answers: %w", errUnavailable, err)
	}
	defer func() { _ = cli.Close() }()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%w: no Docker engine answers: %w", errUnavailable, err)
	}
	return nil
}

// startDocker runs PostgreSQL in a container. testcontainers' reaper
// removes the container if the test binary dies.
func startDocker(ctx context.Context) (*server, error) {
	image := os.Getenv(envImage)
	if image == "" {
		image = defaultImage
	}
	password := rand.Text()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("5432/tcp"),
		testcontainers.WithEnv(map[string]string{
			"POSTGRES_USER":     "postgres",
			"POSTGRES_PASSWORD": password,
			"POSTGRES_DB":       "postgres",
		}),
		testcontainers.WithCmd("postgres",
			"-c", "wal_level=logical",
			"-c", "max_replication_slots=64",
			"-c", "max_wal_senders=64",
			"-c", "max_connections=300",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		),
		// The entrypoint starts a temporary server to initialise the
		// database, then the real one: the second "ready" is the one.
		testcontainers.WithWaitStrategy(wait.ForAll(
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
			wait.ForListeningPort("5432/tcp"),
		).WithDeadline(3*time.Minute)),
	)
	terminate := func(ctx context.Context) error {
		if ctr == nil {
			return nil
		}
		if err := ctr.Terminate(ctx); err != nil {
			return fmt.Errorf("terminating container: %w", err)
		}
		return nil
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting container %s: %w", image, err), terminate(context.WithoutCancel(ctx)))
	}

	host, err := ctr.Host(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("container host: %w", err), terminate(context.WithoutCancel(ctx)))
	}
	port, err := ctr.MappedPort(ctx, "5432/tcp")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("container port: %w", err), terminate(context.WithoutCancel(ctx)))
	}
	base := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", password),
		Host:     net.JoinHostPort(host, port.Port()),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	conn, err := pglocal.WaitReady(ctx, base.String(), nil)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("container %s: %w", image, err), terminate(context.WithoutCancel(ctx)))
	}
	_ = conn.Close(ctx)
	return newServer(ctx, base, terminate, fmt.Sprintf("PostgreSQL in container %s (%s)", image, base.Host))
}
