package synchro

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// This file defines the engine's metrics (docs/metrics.md lists them). They
// exist only when Config.MeterProvider is set: otherwise Engine.metrics is
// nil and every recording method returns at its nil check.

// meterScope is the instrumentation scope of the engine's instruments.
const meterScope = "github.com/synchrosync/synchro"

// Attribute keys of the engine's metrics. Every value comes from a bounded
// set: registered table names, the push statuses and reason codes, the
// snapshot reasons, error types; never a user or client id.
const (
	attrTable            = attribute.Key("synchro.table")
	attrPushStatus       = attribute.Key("synchro.push.status")
	attrPushReason       = attribute.Key("synchro.push.reason")
	attrPullKind         = attribute.Key("synchro.pull.kind")
	attrSnapshotReason   = attribute.Key("synchro.pull.snapshot_reason")
	attrCompactionTarget = attribute.Key("synchro.compaction.target")
	attrErrorType        = attribute.Key("error.type")
)

// otherValue replaces an attribute value outside its known set, as the
// OpenTelemetry semantic conventions do for error.type.
const otherValue = "_OTHER"

// latencyBoundaries are the explicit bucket boundaries, in seconds, of the
// duration histograms: requests take milliseconds, a slow one seconds.
var latencyBoundaries = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// pushStatuses and pushReasons are the values synchro.push.status and
// synchro.push.reason may take.
var (
	pushStatuses = []string{PushStatusApplied, PushStatusConflict, PushStatusRejectedTerminal, PushStatusRejectedRetryable}
	pushReasons  = []string{
		reasonAlreadyDeleted, reasonRecordExists, reasonRecordDeleted, reasonServerWon, reasonTableNotRegistered,
		reasonTableReadOnly, reasonInvalidOperation, reasonInvalidData, reasonRecordNotFound, reasonOwnershipViolation,
		reasonParentNotFound, reasonParentDeleted, reasonParentNeverArrived, reasonCreateFailed, reasonUpdateFailed,
		reasonDeleteFailed, reasonResurrectionFailed, reasonInternalError,
	}
	snapshotReasons = []string{SnapshotReasonInitialSyncRequired, SnapshotReasonCheckpointBeforeLimit, snapshotReasonCheckpointAhead}
)

// errorTypes are the values of error.type, in the order they are matched.
var errorTypes = []struct {
	err  error
	name string
}{
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
	{ErrSchemaMismatch, "schema_mismatch"},
	{ErrClientNotRegistered, "client_not_registered"},
	{ErrStaleClient, "stale_client"},
	{ErrUpgradeRequired, "upgrade_required"},
	{ErrTableNotRegistered, "table_not_registered"},
	{ErrSnapshotRequired, "snapshot_required"},
}

// errorType names the kind of a failed request: a documented sentinel it
// wraps, "bad_request" for another caller mistake, else "_OTHER".
func errorType(err error) string {
	for _, t := range errorTypes {
		if errors.Is(err, t.err) {
			return t.name
		}
	}
	if isBadRequest(err) {
		return "bad_request"
	}
	return otherValue
}

// attrs is one attribute set as the options of each kind of measurement,
// built once so that recording allocates nothing for them.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newAttrs(kvs ...attribute.KeyValue) attrs {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return attrs{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

// engineMetrics holds the engine's instruments and the attribute sets they
// are recorded with. A nil *engineMetrics records nothing.
type engineMetrics struct {
	registerRequests, pushRequests, pushRecords  metric.Int64Counter
	pullRequests, pullRecords                    metric.Int64Counter
	snapshotPages, snapshotRecords               metric.Int64Counter
	compactionDeleted                            metric.Int64Counter
	registerDuration, pushDuration, pullDuration metric.Float64Histogram
	snapshotDuration                             metric.Float64Histogram
	tables                                       map[string]tableAttrs
	errs, snapshotReasons, compactionTargets     map[string]attrs
	knownStatuses, knownReasons                  map[string]bool
	pushAttrs                                    sync.Map // pushKey -> attrs
}

// tableAttrs are the attribute sets of one registered table.
type tableAttrs struct {
	table, change, delete attrs
}

// pushKey is the attribute values of synchro.push.records.
type pushKey struct{ table, status, reason string }

// Compaction targets, the values of synchro.compaction.target.
const (
	compactionChangelog    = "changelog"
	compactionBucketEdges  = "bucket_edges"
	compactionRuleFailures = "rule_failures"
)

// newEngineMetrics creates the engine's instruments from mp, or returns nil
// when mp is nil. tables are the registered table names.
func newEngineMetrics(mp metric.MeterProvider, tables []string) (*engineMetrics, error) {
	if mp == nil {
		return nil, nil
	}
	meter := mp.Meter(meterScope)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	duration := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(latencyBoundaries...))
		errs = append(errs, err)
		return h
	}
	m := &engineMetrics{
		registerRequests:  counter("synchro.register.requests", "{request}", "Client registrations (RegisterClient calls)."),
		registerDuration:  duration("synchro.register.duration", "Duration of RegisterClient calls."),
		pushRequests:      counter("synchro.push.requests", "{request}", "Push calls."),
		pushRecords:       counter("synchro.push.records", "{record}", "Records of committed pushes, by outcome."),
		pushDuration:      duration("synchro.push.duration", "Duration of Push calls."),
		pullRequests:      counter("synchro.pull.requests", "{request}", "Pull calls."),
		pullRecords:       counter("synchro.pull.records", "{record}", "Records delivered by pulls, as changes or deletes."),
		pullDuration:      duration("synchro.pull.duration", "Duration of Pull calls."),
		snapshotPages:     counter("synchro.snapshot.pages", "{page}", "Snapshot calls (one page each)."),
		snapshotRecords:   counter("synchro.snapshot.records", "{record}", "Records delivered by snapshot pages."),
		snapshotDuration:  duration("synchro.snapshot.duration", "Duration of Snapshot calls (one page each)."),
		compactionDeleted: counter("synchro.compaction.deleted", "{row}", "Rows deleted by compaction runs of the engine."),
		tables:            make(map[string]tableAttrs, len(tables)),
		errs:              map[string]attrs{},
		snapshotReasons:   map[string]attrs{},
		compactionTargets: map[string]attrs{},
		knownStatuses:     map[string]bool{},
		knownReasons:      map[string]bool{},
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("synchro: Config.MeterProvider: %w", err)
	}
	for _, t := range tables {
		m.tables[t] = tableAttrs{
			table:  newAttrs(attrTable.String(t)),
			change: newAttrs(attrTable.String(t), attrPullKind.String("change")),
			delete: newAttrs(attrTable.String(t), attrPullKind.String("delete")),
		}
	}
	for _, t := range errorTypes {
		m.errs[t.name] = newAttrs(attrErrorType.String(t.name))
	}
	for _, name := range []string{"bad_request", otherValue} {
		m.errs[name] = newAttrs(attrErrorType.String(name))
	}
	for _, r := range append(snapshotReasons, otherValue) {
		m.snapshotReasons[r] = newAttrs(attrSnapshotReason.String(r))
	}
	for _, t := range []string{compactionChangelog, compactionBucketEdges, compactionRuleFailures} {
		m.compactionTargets[t] = newAttrs(attrCompactionTarget.String(t))
	}
	for _, s := range pushStatuses {
		m.knownStatuses[s] = true
	}
	for _, r := range pushReasons {
		m.knownReasons[r] = true
	}
	return m, nil
}

// start returns the start time of a measured call: the zero time, without
// reading the clock, when there are no metrics.
func (m *engineMetrics) start() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// done counts a finished call and records its duration, with error.type
// when it failed; ok are the attributes of a call that succeeded.
func (m *engineMetrics) done(ctx context.Context, requests metric.Int64Counter, duration metric.Float64Histogram, start time.Time, err error, ok attrs) {
	a := ok
	if err != nil {
		a = m.errs[errorType(err)]
	}
	requests.Add(ctx, 1, a.add...)
	duration.Record(ctx, time.Since(start).Seconds(), a.rec...)
}

// registered records a RegisterClient call.
func (m *engineMetrics) registered(ctx context.Context, start time.Time, err error) {
	if m == nil {
		return
	}
	m.done(ctx, m.registerRequests, m.registerDuration, start, err, attrs{})
}

// pushed records a Push call and, when it committed, its records by table,
// status and reason code.
func (m *engineMetrics) pushed(ctx context.Context, start time.Time, resp *PushResponse, err error) {
	if m == nil {
		return
	}
	m.done(ctx, m.pushRequests, m.pushDuration, start, err, attrs{})
	if err != nil || resp == nil || !m.pushRecords.Enabled(ctx) {
		return
	}
	var (
		t tally[pushKey]
		// prev holds the raw values of the previous record, counted under
		// the key at prevAt: runs of alike records skip the lookups.
		prev   pushKey
		prevAt = -1
	)
	for _, list := range [][]PushResult{resp.Accepted, resp.Rejected} {
		for i := range list {
			r := &list[i]
			raw := pushKey{r.TableName, r.Status, r.ReasonCode}
			if prevAt >= 0 && raw == prev {
				t.counts[prevAt]++
				continue
			}
			k := pushKey{status: otherValue, reason: r.ReasonCode}
			if _, ok := m.tables[r.TableName]; ok {
				k.table = r.TableName
			}
			if m.knownStatuses[r.Status] {
				k.status = r.Status
			}
			if k.reason != "" && !m.knownReasons[k.reason] {
				k.reason = otherValue
			}
			prev, prevAt = raw, t.add(k, 1)
		}
	}
	for i, k := range t.keys {
		m.pushRecords.Add(ctx, t.counts[i], m.pushAttrsOf(k).add...)
	}
}

// pushAttrsOf returns the attribute set of a pushKey, built on first use.
func (m *engineMetrics) pushAttrsOf(k pushKey) attrs {
	if a, ok := m.pushAttrs.Load(k); ok {
		return a.(attrs)
	}
	kvs := []attribute.KeyValue{attrPushStatus.String(k.status)}
	if k.table != "" {
		kvs = append(kvs, attrTable.String(k.table))
	}
	if k.reason != "" {
		kvs = append(kvs, attrPushReason.String(k.reason))
	}
	a, _ := m.pushAttrs.LoadOrStore(k, newAttrs(kvs...))
	return a.(attrs)
}

// pulled records a Pull call and the records it delivered by table.
func (m *engineMetrics) pulled(ctx context.Context, start time.Time, resp *PullResponse, err error) {
	if m == nil {
		return
	}
	var ok attrs
	if err == nil && resp != nil && resp.SnapshotRequired {
		if ok = m.snapshotReasons[resp.SnapshotReason]; ok.add == nil {
			ok = m.snapshotReasons[otherValue]
		}
	}
	m.done(ctx, m.pullRequests, m.pullDuration, start, err, ok)
	if err != nil || resp == nil || !m.pullRecords.Enabled(ctx) {
		return
	}
	var changes, deletes tally[string]
	for i := range resp.Changes {
		changes.add(resp.Changes[i].TableName, 1)
	}
	for i := range resp.Deletes {
		deletes.add(resp.Deletes[i].TableName, 1)
	}
	for i, table := range changes.keys {
		m.pullRecords.Add(ctx, changes.counts[i], m.tables[table].change.add...)
	}
	for i, table := range deletes.keys {
		m.pullRecords.Add(ctx, deletes.counts[i], m.tables[table].delete.add...)
	}
}

// snapshotted records a Snapshot call (one page) and its records by table.
func (m *engineMetrics) snapshotted(ctx context.Context, start time.Time, resp *SnapshotResponse, err error) {
	if m == nil {
		return
	}
	m.done(ctx, m.snapshotPages, m.snapshotDuration, start, err, attrs{})
	if err != nil || resp == nil || !m.snapshotRecords.Enabled(ctx) {
		return
	}
	var t tally[string]
	for i := range resp.Records {
		t.add(resp.Records[i].TableName, 1)
	}
	for i, table := range t.keys {
		m.snapshotRecords.Add(ctx, t.counts[i], m.tables[table].table.add...)
	}
}

// compacted counts n rows a compaction run deleted from target.
func (m *engineMetrics) compacted(ctx context.Context, target string, n int64) {
	if m == nil {
		return
	}
	m.compactionDeleted.Add(ctx, n, m.compactionTargets[target].add...)
}

// tally counts by key, keeping the keys in first-seen order; the few keys
// of one response are found by a linear search.
type tally[K comparable] struct {
	keys   []K
	counts []int64
}

// add adds n to k's count and returns k's index in keys.
func (t *tally[K]) add(k K, n int64) int {
	for i := range t.keys {
		if t.keys[i] == k {
			t.counts[i] += n
			return i
		}
	}
	t.keys = append(t.keys, k)
	t.counts = append(t.counts, n)
	return len(t.keys) - 1
}
