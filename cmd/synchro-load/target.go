package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synchrosync/synchro"
	synclient "github.com/synchrosync/synchro/client"
)

// syncer is the sync protocol as a client sees it: the engine's methods,
// called in-process or over HTTP.
type syncer interface {
	schema(ctx context.Context) (version int64, hash string, err error)
	register(ctx context.Context, user string, req *synchro.RegisterRequest) error
	// pull waits up to wait for a change when there is none (long
	// polling); wait 0 is a plain pull.
	pull(ctx context.Context, user string, req *synchro.PullRequest, wait time.Duration) (*synchro.PullResponse, error)
	push(ctx context.Context, user string, req *synchro.PushRequest) (*synchro.PushResponse, error)
	snapshot(ctx context.Context, user string, req *synchro.SnapshotRequest) (*synchro.SnapshotResponse, error)
}

// engineSyncer calls an engine in the same process.
type engineSyncer struct{ e *synchro.Engine }

func (s engineSyncer) schema(ctx context.Context) (int64, string, error) {
	return s.e.CurrentSchemaManifest(ctx)
}

func (s engineSyncer) register(ctx context.Context, user string, req *synchro.RegisterRequest) error {
	_, err := s.e.RegisterClient(ctx, user, req)
	return err
}

func (s engineSyncer) pull(ctx context.Context, user string, req *synchro.PullRequest, wait time.Duration) (*synchro.PullResponse, error) {
	return s.e.PullWait(ctx, user, req, wait)
}

func (s engineSyncer) push(ctx context.Context, user string, req *synchro.PushRequest) (*synchro.PushResponse, error) {
	return s.e.Push(ctx, user, req)
}

func (s engineSyncer) snapshot(ctx context.Context, user string, req *synchro.SnapshotRequest) (*synchro.SnapshotResponse, error) {
	return s.e.Snapshot(ctx, user, req)
}

// httpSyncer calls the /sync/ endpoints of a server that runs synchrohttp
// with the example's demo authentication ("Authorization: Bearer <user>").
type httpSyncer struct {
	base   string // e.g. http://127.0.0.1:8080, without /sync/
	client *http.Client
}

// newHTTPSyncer keeps up to conns idle connections to the server, one per
// simulated client, so that the run measures requests, not TCP handshakes.
func newHTTPSyncer(base string, conns int) *httpSyncer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 8
	tr.MaxIdleConnsPerHost = conns + 8
	return &httpSyncer{base: strings.TrimRight(base, "/"), client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// httpError is an error response of the server.
type httpError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends req (nil: a GET) to path as user and decodes the response into
// resp.
func (s *httpSyncer) call(ctx context.Context, user, path string, req, resp any) error {
	method, body := http.MethodGet, io.Reader(nil)
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+user)
	if req != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(r)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		herr := &httpError{Status: res.StatusCode}
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
		if json.Unmarshal(raw, herr) != nil {
			herr.Message = strings.TrimSpace(string(raw))
		}
		return herr
	}
	if err := json.NewDecoder(res.Body).Decode(resp); err != nil {
		return fmt.Errorf("decoding the response of %s: %w", path, err)
	}
	return nil
}

func (s *httpSyncer) schema(ctx context.Context) (int64, string, error) {
	var resp synchro.SchemaResponse
	if err := s.call(ctx, "load", "/sync/schema", nil, &resp); err != nil {
		return 0, "", err
	}
	return resp.SchemaVersion, resp.SchemaHash, nil
}

func (s *httpSyncer) register(ctx context.Context, user string, req *synchro.RegisterRequest) error {
	var resp synchro.RegisterResponse
	return s.call(ctx, user, "/sync/register", req, &resp)
}

func (s *httpSyncer) pull(ctx context.Context, user string, req *synchro.PullRequest, wait time.Duration) (*synchro.PullResponse, error) {
	var resp synchro.PullResponse
	path := "/sync/pull"
	if wait > 0 {
		path += "?wait=" + strconv.FormatFloat(wait.Seconds(), 'f', -1, 64)
	}
	return &resp, s.call(ctx, user, path, req, &resp)
}

func (s *httpSyncer) push(ctx context.Context, user string, req *synchro.PushRequest) (*synchro.PushResponse, error) {
	var resp synchro.PushResponse
	return &resp, s.call(ctx, user, "/sync/push", req, &resp)
}

func (s *httpSyncer) snapshot(ctx context.Context, user string, req *synchro.SnapshotRequest) (*synchro.SnapshotResponse, error) {
	var resp synchro.SnapshotResponse
	return &resp, s.call(ctx, user, "/sync/snapshot", req, &resp)
}

// classify names the class of a failed operation for the error counts.
func classify(err error) string {
	var herr *httpError
	var serr *synclient.ServerError
	switch {
	case errors.As(err, &herr):
		return fmt.Sprintf("HTTP %d %s", herr.Status, herr.Code)
	case errors.As(err, &serr):
		return fmt.Sprintf("HTTP %d %s", serr.StatusCode, serr.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, synchro.ErrStaleClient):
		return "stale_client"
	case errors.Is(err, synchro.ErrSchemaMismatch):
		return "schema_mismatch"
	}
	return errorClass(err)
}
