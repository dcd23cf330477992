package synchro

import (
	"context"
	"testing"
	"time"
)

func TestLWWResolver(t *testing.T) {
	t.Parallel()
	server := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return server.Add(d) }
	ptr := func(tm time.Time) *time.Time { return &tm }

	tests := []struct {
		name      string
		tolerance time.Duration
		client    time.Time
		base      *time.Time
		want      string
	}{
		{name: "client newer", client: at(time.Second), want: winnerClient},
		{name: "server newer", client: at(-time.Second), want: winnerServer},
		{name: "tie goes to server", client: server, want: winnerServer},
		{name: "nanosecond newer wins", client: at(time.Nanosecond), want: winnerClient},
		{name: "zero client time loses", client: time.Time{}, want: winnerServer},
		{name: "tolerance enough", tolerance: time.Second, client: at(-500 * time.Millisecond), want: winnerClient},
		{name: "tolerance not enough", tolerance: time.Second, client: at(-5 * time.Second), want: winnerServer},
		{name: "tolerance makes a tie", tolerance: time.Second, client: at(-time.Second), want: winnerServer},
		{name: "negative tolerance favours server", tolerance: -2 * time.Second, client: at(time.Second), want: winnerServer},
		{name: "base unchanged, client older", client: at(-time.Hour), base: ptr(server), want: winnerClient},
		{name: "base unchanged, zero client time", client: time.Time{}, base: ptr(server), want: winnerClient},
		{name: "base unchanged in another zone", client: at(-time.Hour), base: ptr(server.In(time.FixedZone("x", 3600))), want: winnerClient},
		{name: "base changed, client newer", client: at(time.Second), base: ptr(at(-time.Minute)), want: winnerClient},
		{name: "base changed, client older", client: at(-time.Second), base: ptr(at(-time.Minute)), want: winnerServer},
		{name: "base changed, tie", client: server, base: ptr(at(-time.Minute)), want: winnerServer},
		{name: "base ahead of server", client: at(time.Hour), base: ptr(at(time.Second)), want: winnerServer},
		{name: "base off by a nanosecond", client: at(-time.Second), base: ptr(at(-time.Nanosecond)), want: winnerServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &LWWResolver{ClockSkewTolerance: tt.tolerance}
			res, err := r.Resolve(context.Background(), Conflict{
				Table: "items", RecordID: "1", ClientTime: tt.client, ServerTime: server, BaseVersion: tt.base,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Winner != tt.want {
				t.Errorf("winner = %q (%s), want %q", res.Winner, res.Reason, tt.want)
			}
			if res.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}

func TestServerWinsResolver(t *testing.T) {
	t.Parallel()
	server := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := server
	for _, c := range []Conflict{
		{ClientTime: server.Add(time.Hour), ServerTime: server},
		{ClientTime: server.Add(time.Hour), ServerTime: server, BaseVersion: &base},
		{},
	} {
		res, err := (&ServerWinsResolver{}).Resolve(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Winner != winnerServer || res.Reason == "" {
			t.Errorf("Resolve(%+v) = %+v, want server with a reason", c, res)
		}
	}
}
