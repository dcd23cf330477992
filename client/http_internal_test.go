package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	for h, want := range map[string]time.Duration{
		"":         0,
		"3":        3 * time.Second,
		"0.25":     250 * time.Millisecond,
		"-1":       0,
		"NaN":      0,
		"1e30":     maxRetryAfter,
		"soon":     0,
		"99999999": maxRetryAfter,
	} {
		if got := retryAfter(h); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
	if got := retryAfter(time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)); got < 50*time.Second || got > time.Minute {
		t.Errorf("retryAfter(a date a minute ahead) = %v", got)
	}
}

func TestErrorAnswers(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		code    string
		offline bool
		upgrade bool
	}{
		{503, `{"code":"unavailable","message":"m","error":"m"}`, "unavailable", true, false},
		{426, `{"code":"upgrade_required","message":"too old","error":"2.0.0"}`, "upgrade_required", false, true},
		{500, `<html>oops</html>`, "", false, false},
		{409, `{"code":"schema_mismatch","error":"x","schema_version":3}`, "schema_mismatch", false, false},
		{429, ``, "", true, false},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		}))
		a := &api{base: srv.URL, hc: srv.Client(), timeout: 5 * time.Second, appVersion: "1.0.0"}
		var out map[string]any
		err := a.call(t.Context(), http.MethodPost, "/sync/pull", 0, map[string]any{}, &out)
		srv.Close()
		var se *ServerError
		if !errors.As(err, &se) || se.StatusCode != c.status || se.Code != c.code || se.RetryAfter != 2*time.Second {
			t.Errorf("%d %s: %#v", c.status, c.body, err)
			continue
		}
		if isOffline(err) != c.offline || errors.Is(err, ErrUpgradeRequired) != c.upgrade {
			t.Errorf("%d: offline %v, upgrade %v", c.status, isOffline(err), errors.Is(err, ErrUpgradeRequired))
		}
		if c.upgrade && se.Message != "2.0.0" {
			t.Errorf("426 message %q, want the minimum version", se.Message)
		}
	}

	// An answer cut short is a transport failure: offline.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte(`{"changes": [`))
	}))
	defer srv.Close()
	a := &api{base: srv.URL, hc: srv.Client(), timeout: 5 * time.Second}
	var out map[string]any
	err := a.call(t.Context(), http.MethodPost, "/sync/pull", 0, map[string]any{}, &out)
	if !isOffline(err) {
		t.Errorf("a cut answer: %v, not offline", err)
	}
	// A 200 that is not the endpoint's JSON is an error, not offline.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"changes": "nope"}`))
	}))
	defer srv2.Close()
	a.base, a.hc = srv2.URL, srv2.Client()
	var page struct{ Changes []int }
	if err := a.call(t.Context(), http.MethodPost, "/sync/pull", 0, map[string]any{}, &page); err == nil || isOffline(err) ||
		!strings.Contains(err.Error(), "decoding") {
		t.Errorf("a wrong answer: %v", err)
	}
}
