package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// This file defines the consumer's metrics (docs/metrics.md lists them).
// They exist only when ConsumerConfig.MeterProvider is set: otherwise
// applier.metrics is nil and every recording method returns at its nil
// check.

// meterScope is the instrumentation scope of the consumer's instruments.
const meterScope = "github.com/synchrosync/synchro/wal"

// Attribute keys of the consumer's metrics, all of bounded cardinality:
// the slot is configuration, tables are registered ones.
const (
	attrSlot      = attribute.Key("synchro.capture.slot")
	attrTable     = attribute.Key("synchro.table")
	attrOperation = attribute.Key("synchro.capture.operation")
	attrErrorType = attribute.Key("error.type")
)

// latencyBoundaries are the bucket boundaries, in seconds, of the batch
// duration histogram: the same as those of the engine's histograms.
var latencyBoundaries = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// operationNames are the values of synchro.capture.operation.
var operationNames = map[eventKind]string{evInsert: "insert", evUpdate: "update", evDelete: "delete", evTruncate: "truncate"}

// attrs is one attribute set as the options of each kind of measurement,
// built once so that recording allocates nothing for them.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

func newAttrs(kvs ...attribute.KeyValue) attrs {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return attrs{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// rowKey is the attribute values of synchro.capture.rows.
type rowKey struct {
	table string
	kind  eventKind
}

// captureMetrics holds the consumer's instruments and the attribute sets
// they are recorded with. A nil *captureMetrics records nothing.
type captureMetrics struct {
	meter                                           metric.Meter
	rows, transactions, changelogRows, ruleFailures metric.Int64Counter
	batchDuration                                   metric.Float64Histogram
	lag                                             metric.Int64ObservableGauge
	delay                                           metric.Float64ObservableGauge
	slot, canceled, failed                          attrs
	rowAttrs                                        map[rowKey]attrs
	tableAttrs                                      map[string]attrs
}

// newCaptureMetrics creates the consumer's instruments from
// cfg.MeterProvider, or returns nil when it is nil.
func newCaptureMetrics(cfg ConsumerConfig) (*captureMetrics, error) {
	if cfg.MeterProvider == nil {
		return nil, nil
	}
	meter := cfg.MeterProvider.Meter(meterScope)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m := &captureMetrics{
		meter:         meter,
		rows:          counter("synchro.capture.rows", "{row}", "Row changes of registered tables written to the changelog."),
		transactions:  counter("synchro.capture.transactions", "{transaction}", "Transactions with changes to registered tables written to the changelog."),
		changelogRows: counter("synchro.capture.changelog.rows", "{row}", "Rows written to synchro.changelog (one per bucket a change concerns)."),
		ruleFailures:  counter("synchro.capture.rule_failures", "{failure}", "Bucket resolution failures recorded in synchro.rule_failures."),
		slot:          newAttrs(attrSlot.String(cfg.SlotName)),
		canceled:      newAttrs(attrSlot.String(cfg.SlotName), attrErrorType.String("canceled")),
		failed:        newAttrs(attrSlot.String(cfg.SlotName), attrErrorType.String("_OTHER")),
		rowAttrs:      map[rowKey]attrs{},
		tableAttrs:    map[string]attrs{},
	}
	var err error
	m.batchDuration, err = meter.Float64Histogram("synchro.capture.batch.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the changelog transaction of one batch of WAL transactions."),
		metric.WithExplicitBucketBoundaries(latencyBoundaries...))
	errs = append(errs, err)
	m.lag, err = meter.Int64ObservableGauge("synchro.capture.lag", metric.WithUnit("By"),
		metric.WithDescription("WAL the server has that the consumer has neither written to the changelog nor confirmed as irrelevant (Consumer.Lag().Bytes)."))
	errs = append(errs, err)
	m.delay, err = meter.Float64ObservableGauge("synchro.capture.delay", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest received but unwritten transaction has waited (Consumer.Lag().Delay)."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("wal: ConsumerConfig.MeterProvider: %w", err)
	}
	for _, t := range cfg.Registry.TableNames() {
		m.tableAttrs[t] = newAttrs(attrSlot.String(cfg.SlotName), attrTable.String(t))
		for kind, op := range operationNames {
			m.rowAttrs[rowKey{t, kind}] = newAttrs(attrSlot.String(cfg.SlotName), attrTable.String(t), attrOperation.String(op))
		}
	}
	return m, nil
}

// start returns the start time of a measured write: the zero time, without
// reading the clock, when there are no metrics.
func (m *captureMetrics) start() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// batchDone records the duration of a batch's changelog transaction.
func (m *captureMetrics) batchDone(ctx context.Context, start time.Time, err *error) {
	if m == nil {
		return
	}
	a := m.slot
	switch {
	case *err == nil:
	case errors.Is(*err, context.Canceled):
		a = m.canceled
	default:
		a = m.failed
	}
	m.batchDuration.Record(ctx, time.Since(start).Seconds(), a.rec...)
}

// applied counts what a committed batch wrote: the row changes of txns by
// table and operation, the transactions with changes, the changelog rows
// and the rule failures of b.
func (m *captureMetrics) applied(ctx context.Context, txns []*txn, b *batch) {
	if m == nil {
		return
	}
	var n int64
	counts := map[rowKey]int64{}
	for _, t := range txns {
		if len(t.events) > 0 {
			n++
		}
		for i := range t.events {
			ev := &t.events[i]
			if ev.kind == evTruncate {
				for _, table := range ev.tables {
					counts[rowKey{table, evTruncate}]++
				}
				continue
			}
			counts[rowKey{ev.table, ev.kind}]++
		}
	}
	for k, c := range counts {
		a, ok := m.rowAttrs[k]
		if !ok {
			a = m.slot
		}
		m.rows.Add(ctx, c, a.add...)
	}
	m.transactions.Add(ctx, n, m.slot.add...)
	m.changelogRows.Add(ctx, int64(len(b.rows)), m.slot.add...)
	m.failuresRecorded(ctx, b.failures)
}

// failuresRecorded counts rule failures that were committed, by table.
func (m *captureMetrics) failuresRecorded(ctx context.Context, failures []ruleFailure) {
	if m == nil {
		return
	}
	for _, f := range failures {
		a, ok := m.tableAttrs[f.key.table]
		if !ok {
			a = m.slot
		}
		m.ruleFailures.Add(ctx, 1, a.add...)
	}
}

// failuresCounted records counts of rule failures by table (a backfill's
// parts written before its end: see batch.written).
func (m *captureMetrics) failuresCounted(ctx context.Context, counts map[string]int64) {
	if m == nil {
		return
	}
	for table, n := range counts {
		a, ok := m.tableAttrs[table]
		if !ok {
			a = m.slot
		}
		m.ruleFailures.Add(ctx, n, a.add...)
	}
}

// observeLag reports lag() through the lag gauges until the returned
// function is called. Without metrics it does nothing.
func (m *captureMetrics) observeLag(lag func() Lag, logger *slog.Logger) (stop func()) {
	if m == nil {
		return func() {}
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		l := lag()
		o.ObserveInt64(m.lag, l.Bytes, m.slot.obs...)
		o.ObserveFloat64(m.delay, l.Delay.Seconds(), m.slot.obs...)
		return nil
	}, m.lag, m.delay)
	if err != nil {
		logger.WarnContext(context.Background(), "wal: the lag gauges cannot be reported", "error", err)
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
