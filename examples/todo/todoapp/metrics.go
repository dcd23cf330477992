package todoapp

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
)

// Metrics is a small metric.MeterProvider of the example's own, built on
// the OpenTelemetry metric API alone (the library's module requires no
// SDK): it aggregates in memory and serves the aggregates in the Prometheus
// text format. Pass it as synchro.Config.MeterProvider and
// wal.ConsumerConfig.MeterProvider (this package's Config.MeterProvider
// does both) and mount it at GET /metrics. An application with an
// OpenTelemetry SDK uses that instead: examples/metrics wires the SDK and
// its Prometheus exporter.
//
// What it aggregates, per instrument and attribute set (cumulatively, from
// the start):
//   - counters and up-down counters: the sum of what was added (a counter
//     drops negative values, as the SDK does);
//   - histograms: the count, the sum and the count per bucket, with the
//     instrument's advised boundaries (else OpenTelemetry's default ones);
//   - gauges: the last value recorded;
//   - observable instruments: nothing is stored; their callbacks (those
//     given to RegisterCallback and those given as options) run at every
//     scrape, and what they observe is exposed as it is (an observable
//     counter observes its running total). A callback's error is ignored:
//     what it observed before failing is kept.
//
// Memory is bounded: an instrument keeps at most maxSeries attribute sets;
// measurements of any further set go to one set {otel.metric.overflow="true"},
// as the SDK's cardinality limit does. synchro's attribute values come from
// bounded sets (docs/metrics.md), so it never gets there.
//
// Instruments are identified by name, whatever the meter (the
// instrumentation scope) that created them: creating one again with the
// same kind and unit returns the same aggregate; with another kind or unit,
// or under a name that becomes the same Prometheus name, it fails. Scopes
// are not exposed (the SDK's exporter adds otel_scope_* labels and
// target_info).
//
// It is safe for concurrent use.
type Metrics struct {
	embedded.MeterProvider

	mu          sync.Mutex
	instruments map[string]*instrument // by lower-case OpenTelemetry name
	promNames   map[string]string      // Prometheus name -> OpenTelemetry name
	callbacks   map[uint64]callback
	nextID      uint64
}

var _ metric.MeterProvider = (*Metrics)(nil)

// maxSeries bounds the attribute sets of one instrument (the SDK's default
// cardinality limit).
const maxSeries = 2000

// overflowSet replaces the attribute sets beyond maxSeries.
var overflowSet = attribute.NewSet(attribute.Bool("otel.metric.overflow", true))

// defaultBoundaries are OpenTelemetry's default explicit bucket boundaries,
// for histograms that advise none.
var defaultBoundaries = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// NewMetrics returns a Metrics without instruments.
func NewMetrics() *Metrics {
	return &Metrics{
		instruments: map[string]*instrument{},
		promNames:   map[string]string{},
		callbacks:   map[uint64]callback{},
	}
}

// Meter returns a meter creating instruments in p. The scope (name) is not
// kept.
func (p *Metrics) Meter(string, ...metric.MeterOption) metric.Meter {
	return meter{p: p}
}

// kind is the kind of an instrument, whatever its number type.
type kind int

const (
	kindCounter kind = iota
	kindUpDownCounter
	kindHistogram
	kindGauge
	kindObservableCounter
	kindObservableUpDownCounter
	kindObservableGauge
)

var kindNames = [...]string{"Counter", "UpDownCounter", "Histogram", "Gauge", "ObservableCounter", "ObservableUpDownCounter", "ObservableGauge"}

func (k kind) String() string { return kindNames[k] }

// observable reports whether k's values come from callbacks.
func (k kind) observable() bool { return k >= kindObservableCounter }

// promType is the Prometheus type k is exposed as.
func (k kind) promType() string {
	switch k {
	case kindCounter, kindObservableCounter:
		return "counter"
	case kindHistogram:
		return "histogram"
	default:
		return "gauge"
	}
}

// instrument is one instrument and, unless it is observable, its
// aggregates. A nil *instrument (returned with an error) records nothing.
type instrument struct {
	name, unit, desc string
	promName         string
	kind             kind
	bounds           []float64 // of a histogram

	mu     sync.Mutex
	series map[attribute.Distinct]*point
}

// point is the aggregate of one attribute set.
type point struct {
	attrs   attribute.Set
	value   float64  // a counter's sum, a gauge's last value, an observation
	count   uint64   // of a histogram
	sum     float64  // of a histogram
	buckets []uint64 // of a histogram: per bucket (not cumulative), len(bounds)+1
}

// pointOf returns the point of set in series, created if needed; beyond
// maxSeries sets, the overflow set's.
func pointOf(series map[attribute.Distinct]*point, set attribute.Set, nBuckets int) *point {
	key := set.Equivalent()
	if pt, ok := series[key]; ok {
		return pt
	}
	if len(series) >= maxSeries {
		set, key = overflowSet, overflowSet.Equivalent()
		if pt, ok := series[key]; ok {
			return pt
		}
	}
	pt := &point{attrs: set}
	if nBuckets > 0 {
		pt.buckets = make([]uint64, nBuckets)
	}
	series[key] = pt
	return pt
}

// record aggregates a measurement of a synchronous instrument.
func (in *instrument) record(v float64, set attribute.Set) {
	if in == nil || math.IsNaN(v) || (in.kind == kindCounter && v < 0) {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	pt := pointOf(in.series, set, in.nBuckets())
	switch in.kind {
	case kindHistogram:
		pt.count++
		pt.sum += v
		// Buckets include their upper boundary: the first boundary >= v.
		pt.buckets[sort.SearchFloat64s(in.bounds, v)]++
	case kindGauge:
		pt.value = v
	default:
		pt.value += v
	}
}

func (in *instrument) nBuckets() int {
	if in.kind != kindHistogram {
		return 0
	}
	return len(in.bounds) + 1
}

// Enabled reports whether measurements are kept: always, unless in is nil.
func (in *instrument) Enabled(context.Context) bool { return in != nil }

// self lets an observer find the instrument behind an Observable.
func (in *instrument) self() *instrument { return in }

// snapshot copies the points of a synchronous instrument.
func (in *instrument) snapshot() []point {
	in.mu.Lock()
	defer in.mu.Unlock()
	return copyPoints(in.series)
}

func copyPoints(series map[attribute.Distinct]*point) []point {
	out := make([]point, 0, len(series))
	for _, pt := range series {
		c := *pt
		c.buckets = slices.Clone(pt.buckets)
		out = append(out, c)
	}
	return out
}

// instrument returns the instrument name, created if needed.
func (p *Metrics) instrument(name, unit, desc string, k kind, bounds []float64) (*instrument, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in, ok := p.instruments[strings.ToLower(name)]; ok {
		if in.kind != k || in.unit != unit {
			return nil, fmt.Errorf("todoapp metrics: instrument %q exists as a %s with unit %q, not a %s with unit %q", name, in.kind, in.unit, k, unit)
		}
		return in, nil
	}
	prom := promMetricName(name, unit, k)
	if prom == "" {
		return nil, fmt.Errorf("todoapp metrics: instrument name %q has no Prometheus name", name)
	}
	if other, ok := p.promNames[prom]; ok {
		return nil, fmt.Errorf("todoapp metrics: instruments %q and %q have the same Prometheus name %s", other, name, prom)
	}
	in := &instrument{name: name, unit: unit, desc: desc, promName: prom, kind: k, series: map[attribute.Distinct]*point{}}
	if k == kindHistogram {
		if len(bounds) == 0 {
			bounds = defaultBoundaries
		}
		in.bounds = slices.Clone(bounds)
		slices.Sort(in.bounds)
		in.bounds = slices.Compact(in.bounds)
	}
	p.instruments[strings.ToLower(name)] = in
	p.promNames[prom] = name
	return in, nil
}

// callback runs at every scrape and observes into a collection.
type callback func(context.Context, *collection) error

// register adds cb to the callbacks run at every scrape.
func (p *Metrics) register(cb callback) metric.Registration {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.nextID
	p.nextID++
	p.callbacks[id] = cb
	return registration{p: p, id: id}
}

type registration struct {
	embedded.Registration
	p  *Metrics
	id uint64
}

// Unregister removes the callback; removing it again does nothing.
func (r registration) Unregister() error {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	delete(r.p.callbacks, r.id)
	return nil
}

// collection holds what the callbacks of one scrape observe.
type collection struct {
	mu     sync.Mutex
	points map[*instrument]map[attribute.Distinct]*point
}

// observe keeps v as the value of in's set, the last observation winning.
func (c *collection) observe(in *instrument, v float64, set attribute.Set) {
	if in == nil || !in.kind.observable() || math.IsNaN(v) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	series := c.points[in]
	if series == nil {
		series = map[attribute.Distinct]*point{}
		c.points[in] = series
	}
	pointOf(series, set, 0).value = v
}

func (c *collection) snapshot(in *instrument) []point {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyPoints(c.points[in])
}

// observer is the metric.Observer of a callback given to RegisterCallback:
// it keeps observations of the instruments it was registered with only.
type observer struct {
	embedded.Observer
	c       *collection
	allowed []*instrument
}

func (o observer) ObserveInt64(obs metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	o.observe(obs, float64(v), opts)
}

func (o observer) ObserveFloat64(obs metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	o.observe(obs, v, opts)
}

func (o observer) observe(obs metric.Observable, v float64, opts []metric.ObserveOption) {
	if in := instrumentOf(obs); in != nil && slices.Contains(o.allowed, in) {
		o.c.observe(in, v, metric.NewObserveConfig(opts).Attributes())
	}
}

// instrumentOf returns the instrument behind an Observable of this
// provider, else nil.
func instrumentOf(obs metric.Observable) *instrument {
	if s, ok := obs.(interface{ self() *instrument }); ok {
		return s.self()
	}
	return nil
}

// int64Observer and float64Observer are the observers of the callbacks
// given as options of an observable instrument.
type int64Observer struct {
	embedded.Int64Observer
	c  *collection
	in *instrument
}

func (o int64Observer) Observe(v int64, opts ...metric.ObserveOption) {
	o.c.observe(o.in, float64(v), metric.NewObserveConfig(opts).Attributes())
}

type float64Observer struct {
	embedded.Float64Observer
	c  *collection
	in *instrument
}

func (o float64Observer) Observe(v float64, opts ...metric.ObserveOption) {
	o.c.observe(o.in, v, metric.NewObserveConfig(opts).Attributes())
}

// meter creates the instruments of a Metrics.
type meter struct {
	embedded.Meter
	p *Metrics
}

var _ metric.Meter = meter{}

// RegisterCallback runs f at every scrape, for the observable instruments
// of this provider among insts.
func (m meter) RegisterCallback(f metric.Callback, insts ...metric.Observable) (metric.Registration, error) {
	var allowed []*instrument
	for _, obs := range insts {
		if in := instrumentOf(obs); in != nil {
			allowed = append(allowed, in)
		}
	}
	return m.p.register(func(ctx context.Context, c *collection) error {
		return f(ctx, observer{c: c, allowed: allowed})
	}), nil
}

// registerInt64 and registerFloat64 register the callbacks given as options
// of an observable instrument.
func (m meter) registerInt64(in *instrument, cbs []metric.Int64Callback) {
	if in == nil {
		return
	}
	for _, cb := range cbs {
		m.p.register(func(ctx context.Context, c *collection) error { return cb(ctx, int64Observer{c: c, in: in}) })
	}
}

func (m meter) registerFloat64(in *instrument, cbs []metric.Float64Callback) {
	if in == nil {
		return
	}
	for _, cb := range cbs {
		m.p.register(func(ctx context.Context, c *collection) error { return cb(ctx, float64Observer{c: c, in: in}) })
	}
}

func (m meter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	c := metric.NewInt64CounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindCounter, nil)
	return int64Counter{instrument: in}, err
}

func (m meter) Float64Counter(name string, opts ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	c := metric.NewFloat64CounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindCounter, nil)
	return float64Counter{instrument: in}, err
}

func (m meter) Int64UpDownCounter(name string, opts ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	c := metric.NewInt64UpDownCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindUpDownCounter, nil)
	return int64UpDownCounter{instrument: in}, err
}

func (m meter) Float64UpDownCounter(name string, opts ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	c := metric.NewFloat64UpDownCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindUpDownCounter, nil)
	return float64UpDownCounter{instrument: in}, err
}

func (m meter) Int64Histogram(name string, opts ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	c := metric.NewInt64HistogramConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindHistogram, c.ExplicitBucketBoundaries())
	return int64Histogram{instrument: in}, err
}

func (m meter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	c := metric.NewFloat64HistogramConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindHistogram, c.ExplicitBucketBoundaries())
	return float64Histogram{instrument: in}, err
}

func (m meter) Int64Gauge(name string, opts ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	c := metric.NewInt64GaugeConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindGauge, nil)
	return int64Gauge{instrument: in}, err
}

func (m meter) Float64Gauge(name string, opts ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	c := metric.NewFloat64GaugeConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindGauge, nil)
	return float64Gauge{instrument: in}, err
}

func (m meter) Int64ObservableCounter(name string, opts ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	c := metric.NewInt64ObservableCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableCounter, nil)
	m.registerInt64(in, c.Callbacks())
	return int64ObservableCounter{instrument: in}, err
}

func (m meter) Float64ObservableCounter(name string, opts ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	c := metric.NewFloat64ObservableCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableCounter, nil)
	m.registerFloat64(in, c.Callbacks())
	return float64ObservableCounter{instrument: in}, err
}

func (m meter) Int64ObservableUpDownCounter(name string, opts ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	c := metric.NewInt64ObservableUpDownCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableUpDownCounter, nil)
	m.registerInt64(in, c.Callbacks())
	return int64ObservableUpDownCounter{instrument: in}, err
}

func (m meter) Float64ObservableUpDownCounter(name string, opts ...metric.Float64ObservableUpDownCounterOption) (metric.Float64ObservableUpDownCounter, error) {
	c := metric.NewFloat64ObservableUpDownCounterConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableUpDownCounter, nil)
	m.registerFloat64(in, c.Callbacks())
	return float64ObservableUpDownCounter{instrument: in}, err
}

func (m meter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	c := metric.NewInt64ObservableGaugeConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableGauge, nil)
	m.registerInt64(in, c.Callbacks())
	return int64ObservableGauge{instrument: in}, err
}

func (m meter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	c := metric.NewFloat64ObservableGaugeConfig(opts...)
	in, err := m.p.instrument(name, c.Unit(), c.Description(), kindObservableGauge, nil)
	m.registerFloat64(in, c.Callbacks())
	return float64ObservableGauge{instrument: in}, err
}

// The instruments: each embeds the API's embedded interface of its kind
// (nil, as the API asks of implementations) and the *instrument that
// aggregates.

type int64Counter struct {
	embedded.Int64Counter
	*instrument
}

func (i int64Counter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	i.record(float64(v), metric.NewAddConfig(opts).Attributes())
}

type float64Counter struct {
	embedded.Float64Counter
	*instrument
}

func (i float64Counter) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	i.record(v, metric.NewAddConfig(opts).Attributes())
}

type int64UpDownCounter struct {
	embedded.Int64UpDownCounter
	*instrument
}

func (i int64UpDownCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	i.record(float64(v), metric.NewAddConfig(opts).Attributes())
}

type float64UpDownCounter struct {
	embedded.Float64UpDownCounter
	*instrument
}

func (i float64UpDownCounter) Add(_ context.Context, v float64, opts ...metric.AddOption) {
	i.record(v, metric.NewAddConfig(opts).Attributes())
}

type int64Histogram struct {
	embedded.Int64Histogram
	*instrument
}

func (i int64Histogram) Record(_ context.Context, v int64, opts ...metric.RecordOption) {
	i.record(float64(v), metric.NewRecordConfig(opts).Attributes())
}

type float64Histogram struct {
	embedded.Float64Histogram
	*instrument
}

func (i float64Histogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	i.record(v, metric.NewRecordConfig(opts).Attributes())
}

type int64Gauge struct {
	embedded.Int64Gauge
	*instrument
}

func (i int64Gauge) Record(_ context.Context, v int64, opts ...metric.RecordOption) {
	i.record(float64(v), metric.NewRecordConfig(opts).Attributes())
}

type float64Gauge struct {
	embedded.Float64Gauge
	*instrument
}

func (i float64Gauge) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	i.record(v, metric.NewRecordConfig(opts).Attributes())
}

// The observable instruments also embed the API's Int64Observable or
// Float64Observable interface, whose unexported method only the API's
// types have.

type int64ObservableCounter struct {
	metric.Int64Observable
	embedded.Int64ObservableCounter
	*instrument
}

type float64ObservableCounter struct {
	metric.Float64Observable
	embedded.Float64ObservableCounter
	*instrument
}

type int64ObservableUpDownCounter struct {
	metric.Int64Observable
	embedded.Int64ObservableUpDownCounter
	*instrument
}

type float64ObservableUpDownCounter struct {
	metric.Float64Observable
	embedded.Float64ObservableUpDownCounter
	*instrument
}

type int64ObservableGauge struct {
	metric.Int64Observable
	embedded.Int64ObservableGauge
	*instrument
}

type float64ObservableGauge struct {
	metric.Float64Observable
	embedded.Float64ObservableGauge
	*instrument
}
