// Package metrictest is an OpenTelemetry MeterProvider that keeps every
// instrument it creates and every measurement in memory, for the tests of
// the engine's and the consumer's metrics.
//
// It is built on the metric API alone (go.opentelemetry.io/otel/metric and
// its noop and embedded packages), not on the SDK: a test-only dependency
// still lands in go.mod's require list, and so in the module graph of every
// importer of synchro. Instruments of kinds the library does not use fall
// back to the API's noop implementation and record nothing.
package metrictest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	"go.opentelemetry.io/otel/metric/noop"
)

// Instrument kinds, as Instrument.Kind names them.
const (
	Counter         = "Counter"
	Histogram       = "Histogram"
	ObservableGauge = "ObservableGauge"
)

// Instrument is an instrument as it was created.
type Instrument struct {
	Scope       string // the name given to MeterProvider.Meter
	Name        string
	Kind        string // Counter, Histogram or ObservableGauge
	Unit        string
	Description string
	// Boundaries are a histogram's explicit bucket boundaries.
	Boundaries []float64
}

// Measurement is one value added to a counter or recorded by a histogram,
// or observed for a gauge.
type Measurement struct {
	Value float64
	Attrs attribute.Set
}

// Provider records instruments and measurements. The zero value is not
// usable; call NewProvider. It is safe for concurrent use.
type Provider struct {
	embedded.MeterProvider

	mu           sync.Mutex
	instruments  []Instrument
	measurements map[string][]Measurement
	callbacks    map[int]metric.Callback
	nextID       int
}

var _ metric.MeterProvider = (*Provider)(nil)

// NewProvider returns an empty Provider.
func NewProvider() *Provider {
	return &Provider{measurements: map[string][]Measurement{}, callbacks: map[int]metric.Callback{}}
}

// Meter returns a meter recording into p.
func (p *Provider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	return &meter{p: p, scope: name}
}

// Instruments returns the instruments created so far, in creation order.
func (p *Provider) Instruments() []Instrument {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.instruments)
}

// Measurements returns the measurements of the synchronous instrument name
// whose attributes hold every one of attrs.
func (p *Provider) Measurements(name string, attrs ...attribute.KeyValue) []Measurement {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Measurement
	for _, m := range p.measurements[name] {
		if matches(m.Attrs, attrs) {
			out = append(out, m)
		}
	}
	return out
}

// Sum adds up the values of Measurements(name, attrs...).
func (p *Provider) Sum(name string, attrs ...attribute.KeyValue) float64 {
	var sum float64
	for _, m := range p.Measurements(name, attrs...) {
		sum += m.Value
	}
	return sum
}

// Count is the number of Measurements(name, attrs...): for a histogram,
// the number of recorded values.
func (p *Provider) Count(name string, attrs ...attribute.KeyValue) int {
	return len(p.Measurements(name, attrs...))
}

// Observe runs the registered callbacks, as a collection would, and
// returns what they observed for the asynchronous instrument name with
// every one of attrs.
func (p *Provider) Observe(name string, attrs ...attribute.KeyValue) []Measurement {
	p.mu.Lock()
	cbs := make([]metric.Callback, 0, len(p.callbacks))
	for _, id := range slices.Sorted(maps.Keys(p.callbacks)) {
		cbs = append(cbs, p.callbacks[id])
	}
	p.mu.Unlock()
	o := &observer{got: map[string][]Measurement{}}
	for _, cb := range cbs {
		_ = cb(context.Background(), o)
	}
	var out []Measurement
	for _, m := range o.got[name] {
		if matches(m.Attrs, attrs) {
			out = append(out, m)
		}
	}
	return out
}

// Callbacks is the number of callbacks registered and not unregistered.
func (p *Provider) Callbacks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.callbacks)
}

// matches reports whether set holds every one of attrs.
func matches(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func (p *Provider) add(in Instrument) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.instruments = append(p.instruments, in)
}

func (p *Provider) record(name string, v float64, attrs attribute.Set) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.measurements[name] = append(p.measurements[name], Measurement{Value: v, Attrs: attrs})
}

// meter creates recording instruments; kinds it does not override are the
// API's noop ones.
type meter struct {
	noop.Meter
	p     *Provider
	scope string
}

func (m *meter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	cfg := metric.NewInt64CounterConfig(opts...)
	m.p.add(Instrument{Scope: m.scope, Name: name, Kind: Counter, Unit: cfg.Unit(), Description: cfg.Description()})
	return int64Counter{p: m.p, name: name}, nil
}

func (m *meter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	cfg := metric.NewFloat64HistogramConfig(opts...)
	m.p.add(Instrument{Scope: m.scope, Name: name, Kind: Histogram, Unit: cfg.Unit(), Description: cfg.Description(),
		Boundaries: slices.Clone(cfg.ExplicitBucketBoundaries())})
	return float64Histogram{p: m.p, name: name}, nil
}

func (m *meter) Int64ObservableGauge(name string, opts ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	cfg := metric.NewInt64ObservableGaugeConfig(opts...)
	m.p.add(Instrument{Scope: m.scope, Name: name, Kind: ObservableGauge, Unit: cfg.Unit(), Description: cfg.Description()})
	if len(cfg.Callbacks()) > 0 {
		panic("metrictest: instrument callbacks are not supported; use RegisterCallback")
	}
	return int64Gauge{name: name}, nil
}

func (m *meter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	cfg := metric.NewFloat64ObservableGaugeConfig(opts...)
	m.p.add(Instrument{Scope: m.scope, Name: name, Kind: ObservableGauge, Unit: cfg.Unit(), Description: cfg.Description()})
	if len(cfg.Callbacks()) > 0 {
		panic("metrictest: instrument callbacks are not supported; use RegisterCallback")
	}
	return float64Gauge{name: name}, nil
}

func (m *meter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	id := m.p.nextID
	m.p.nextID++
	m.p.callbacks[id] = f
	return registration{p: m.p, id: id}, nil
}

type registration struct {
	noop.Registration
	p  *Provider
	id int
}

func (r registration) Unregister() error {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	delete(r.p.callbacks, r.id)
	return nil
}

type int64Counter struct {
	noop.Int64Counter
	p    *Provider
	name string
}

func (c int64Counter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.p.record(c.name, float64(v), metric.NewAddConfig(opts).Attributes())
}

func (c int64Counter) Enabled(context.Context) bool { return true }

type float64Histogram struct {
	noop.Float64Histogram
	p    *Provider
	name string
}

func (h float64Histogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.p.record(h.name, v, metric.NewRecordConfig(opts).Attributes())
}

func (h float64Histogram) Enabled(context.Context) bool { return true }

type int64Gauge struct {
	noop.Int64ObservableGauge
	name string
}

type float64Gauge struct {
	noop.Float64ObservableGauge
	name string
}

// observer collects what callbacks observe, by instrument name.
type observer struct {
	noop.Observer
	got map[string][]Measurement
}

func (o *observer) ObserveInt64(inst metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	if g, ok := inst.(int64Gauge); ok {
		o.got[g.name] = append(o.got[g.name], Measurement{Value: float64(v), Attrs: metric.NewObserveConfig(opts).Attributes()})
	}
}

func (o *observer) ObserveFloat64(inst metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	if g, ok := inst.(float64Gauge); ok {
		o.got[g.name] = append(o.got[g.name], Measurement{Value: v, Attrs: metric.NewObserveConfig(opts).Attributes()})
	}
}
