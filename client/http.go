package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrClosed is returned by the methods of a Client after Close.
var ErrClosed = errors.New("synchro client: closed")

// ErrUpgradeRequired matches (errors.Is) a *ServerError of status 426: the
// server refuses this AppVersion. Its Message is the minimum version.
var ErrUpgradeRequired = errors.New("synchro client: the server requires a newer app version")

// ServerError is an error status the server answered.
type ServerError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the body's "code" (such as "unavailable"); "" when the body
	// was not the server's error body.
	Code string
	// Message is the body's "error" (for people), or the start of the
	// body when it was not JSON.
	Message string
	// RetryAfter is the wait the Retry-After header asked for; 0 when
	// none.
	RetryAfter time.Duration
}

func (e *ServerError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("synchro client: HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("synchro client: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Is makes a 426 match ErrUpgradeRequired.
func (e *ServerError) Is(target error) bool {
	return target == ErrUpgradeRequired && e.StatusCode == http.StatusUpgradeRequired
}

// Temporary reports whether the status says the server cannot answer for
// now (429, 502, 503, 504): the client is offline rather than failing.
func (e *ServerError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transportError is a request that got no complete answer: the network,
// a timeout, a response cut short.
type transportError struct{ err error }

func (e *transportError) Error() string { return "synchro client: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// isOffline reports whether err means the server could not be reached or
// cannot answer for now.
func isOffline(err error) bool {
	var te *transportError
	var se *ServerError
	return errors.As(err, &te) || (errors.As(err, &se) && se.Temporary())
}

// serverCode returns the error code of a *ServerError in err, "" when none.
func serverCode(err error) (int, string) {
	var se *ServerError
	if errors.As(err, &se) {
		return se.StatusCode, se.Code
	}
	return 0, ""
}

// Bounds of a response.
const (
	// maxResponseBytes bounds a success body (a page of 1000 large rows
	// fits many times over).
	maxResponseBytes = 512 << 20
	// maxErrorBytes bounds an error body.
	maxErrorBytes = 64 << 10
	// maxRetryAfter caps the wait a Retry-After header may ask for.
	maxRetryAfter = time.Hour
)

// api calls the sync endpoints.
type api struct {
	base       string // without a trailing slash
	hc         *http.Client
	token      func(context.Context) (string, error)
	appVersion string
	timeout    time.Duration
}

// call sends body (nil for a GET) as JSON to path, with "?wait=" when wait
// is positive, and decodes a 200 answer into out. Each call is bounded by
// the request timeout plus wait.
func (a *api) call(ctx context.Context, method, path string, wait time.Duration, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout+wait)
	defer cancel()
	target := a.base + path
	if wait > 0 {
		target += "?wait=" + url.QueryEscape(strconv.FormatFloat(wait.Seconds(), 'f', -1, 64))
	}
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("synchro client: encoding %s: %w", path, err)
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, payload)
	if err != nil {
		return fmt.Errorf("synchro client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.appVersion != "" {
		req.Header.Set("X-App-Version", a.appVersion)
	}
	if a.token != nil {
		tok, err := a.token(ctx)
		if err != nil {
			return fmt.Errorf("synchro client: getting a token: %w", err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err // the caller gave up
		}
		return &transportError{fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return errorFromResponse(resp)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes))
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || ctx.Err() != nil || isReadError(err) {
			return &transportError{fmt.Errorf("%s %s: reading the answer: %w", method, path, err)}
		}
		return fmt.Errorf("synchro client: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// isReadError reports whether a decode error came from reading the body
// (a connection reset), not from its contents.
func isReadError(err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return !errors.As(err, &syn) && !errors.As(err, &typ)
}

// errorFromResponse reads an error answer.
func errorFromResponse(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	se := &ServerError{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var body map[string]any
	if json.Unmarshal(data, &body) == nil {
		se.Code, _ = body["code"].(string)
		se.Message, _ = body["error"].(string)
		if se.Message == "" {
			se.Message, _ = body["message"].(string)
		}
	}
	if se.Code == "" && se.Message == "" {
		se.Message = strings.Join(strings.Fields(string(data[:min(len(data), 200)])), " ")
	}
	return se
}

// retryAfter reads a Retry-After header: seconds (decimals allowed) or an
// HTTP date; 0 when absent or unreadable.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil {
		switch {
		case !(s > 0): // NaN too
			return 0
		case s >= maxRetryAfter.Seconds():
			return maxRetryAfter
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return 0
}
