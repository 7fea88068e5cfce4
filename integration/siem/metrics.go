package siem

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the router's Prometheus metrics. Their only label is the sink's name:
// never an event, agent, interaction or recording id.
type metrics struct {
	delivered    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	undelivered  *prometheus.CounterVec
	deadlettered *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	pending      *prometheus.GaugeVec

	mu      sync.Mutex
	waiting map[string]map[string]struct{} // sink -> event ids left undelivered
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "custody", Subsystem: "siem", Name: name, Help: help}, []string{"sink"})
	}
	m := &metrics{
		delivered:    counter("delivered_total", "Events the sink's receiver accepted."),
		retried:      counter("retried_total", "Delivery attempts repeated after a retryable failure."),
		undelivered:  counter("undelivered_total", "Deliveries that failed every attempt; the event stays unacknowledged in the stream and is redelivered later."),
		deadlettered: counter("deadlettered_total", "Events refused permanently and parked in the sink's dead-letter subject."),
		skipped:      counter("skipped_total", "Events the sink's format does not forward (acknowledged without sending)."),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "custody", Subsystem: "siem", Name: "undelivered",
			Help: "Events whose last delivery run failed and that await redelivery (since this process started)."}, []string{"sink"}),
		waiting: map[string]map[string]struct{}{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.delivered, m.retried, m.undelivered, m.deadlettered, m.skipped, m.pending} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, errors.New("siem: metrics already registered (one router per registry)")
				}
				return nil, err
			}
		}
	}
	return m, nil
}

// init makes every series of a sink exist from the start, at zero.
func (m *metrics) init(sink string) {
	for _, c := range []*prometheus.CounterVec{m.delivered, m.retried, m.undelivered, m.deadlettered, m.skipped} {
		c.WithLabelValues(sink)
	}
	m.pending.WithLabelValues(sink).Set(0)
}

// wait records that id is waiting for redelivery to sink; settled that it is done
// (delivered, dead-lettered or skipped).
func (m *metrics) wait(sink, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.waiting[sink]
	if set == nil {
		set = map[string]struct{}{}
		m.waiting[sink] = set
	}
	set[id] = struct{}{}
	m.pending.WithLabelValues(sink).Set(float64(len(set)))
}

func (m *metrics) settled(sink, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.waiting[sink]
	if _, ok := set[id]; !ok {
		return
	}
	delete(set, id)
	m.pending.WithLabelValues(sink).Set(float64(len(set)))
}
