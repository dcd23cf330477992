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
)

// Bounds of the HTTP calls.
const (
	// requestTimeout bounds one HTTP exchange.
	requestTimeout = 15 * time.Second
	// maxResponseBytes bounds a response body.
	maxResponseBytes = 64 << 20
	// unavailableAttempts is how often a call answered 503 is tried.
	unavailableAttempts = 5
	// maxRetryWait caps the wait a Retry-After header asks for.
	maxRetryWait = 2 * time.Second
	// maxQuotedBody bounds how much of an unexpected error body an error
	// quotes.
	maxQuotedBody = 200
)

// api calls the server's /sync/ endpoints.
type api struct {
	base string // http://host:port, without the trailing slash
	http *http.Client
}

func newAPI(base string) *api {
	return &api{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: requestTimeout}}
}

// apiError is an error response of the server: its status and the JSON body
// {"code", "message", "error"} of package synchrohttp (error repeats the message).
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends req (nil for a GET) as JSON to path on behalf of user, with
// the demo server's authentication, and decodes a 200 answer into resp. An
// error answer is returned as an *apiError; a 503 is tried again after the
// Retry-After the server asks for.
func (a *api) call(ctx context.Context, user, method, path string, req, resp any) error {
	var body []byte
	if req != nil {
		var err error
		if body, err = json.Marshal(req); err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
	}
	for attempt := 1; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		// The demo server's authentication: the bearer token is the
		// user name (see todoapp/auth.go of the server). A real client sends a
		// real token.
		hreq.Header.Set("Authorization", "Bearer "+user)
		if req != nil {
			hreq.Header.Set("Content-Type", "application/json")
		}
		hresp, err := a.http.Do(hreq)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes))
		_ = hresp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: reading the response: %w", method, path, err)
		}
		if hresp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(data, resp); err != nil {
				return fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
			}
			return nil
		}
		apiErr := &apiError{Status: hresp.StatusCode}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Code == "" {
			// Not the adapter's error body: not the example server.
			apiErr.Code = "unexpected"
			apiErr.Message = strings.Join(strings.Fields(string(data[:min(len(data), maxQuotedBody)])), " ")
		}
		if hresp.StatusCode != http.StatusServiceUnavailable || attempt == unavailableAttempts {
			return fmt.Errorf("%s %s: %w", method, path, apiErr)
		}
		wait := maxRetryWait
		if s, err := strconv.Atoi(hresp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = min(time.Duration(s)*time.Second, maxRetryWait)
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, errors.Join(apiErr, err))
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
