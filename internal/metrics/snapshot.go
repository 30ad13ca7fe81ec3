package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the live state the gauges report, read at scrape time from
// the parts' own tables (their Stats methods) rather than kept twice.
type Snapshot struct {
	// C2SConnections counts client TCP connections, negotiating or bound.
	C2SConnections int
	// C2SStreams counts bound client streams by hosted domain.
	C2SStreams map[string]int
	// S2S lists server-to-server streams (one entry per stream).
	S2S []S2SStream
	// SIPRegistrations counts registered contacts (bindings).
	SIPRegistrations int
	// Subscriptions counts active presence subscriptions by direction
	// (DirectionIn, DirectionOut).
	Subscriptions map[string]int
}

// S2SStream is one server-to-server stream.
type S2SStream struct {
	Domain    string // the peer domain
	Direction string // DirectionIn or DirectionOut
}

type snapshotCollector struct {
	snap func() Snapshot
}

var _ prometheus.Collector = (*snapshotCollector)(nil)

// The descriptors of the snapshot gauges; built per call so that the
// package holds no state.
func descC2SConns() *prometheus.Desc {
	return prometheus.NewDesc("umpp_c2s_connections", "Client TCP connections open, negotiating or bound.", nil, nil)
}

func descC2S() *prometheus.Desc {
	return prometheus.NewDesc("umpp_c2s_streams", "Bound client-to-server streams, by hosted domain.", []string{"domain"}, nil)
}

func descS2S() *prometheus.Desc {
	return prometheus.NewDesc("umpp_s2s_streams", "Server-to-server streams, by peer domain and direction (in, out).", []string{"domain", "direction"}, nil)
}

func descRegs() *prometheus.Desc {
	return prometheus.NewDesc("umpp_sip_registrations", "Registered SIP contacts (registrar bindings).", nil, nil)
}

func descSubs() *prometheus.Desc {
	return prometheus.NewDesc("umpp_presence_subscriptions", "Active presence subscriptions, by direction (in: to a local user; out: to a remote presentity).", []string{"direction"}, nil)
}

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descC2SConns()
	ch <- descC2S()
	ch <- descS2S()
	ch <- descRegs()
	ch <- descSubs()
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	ch <- prometheus.MustNewConstMetric(descC2SConns(), prometheus.GaugeValue, float64(s.C2SConnections))
	for _, d := range sortedKeys(s.C2SStreams) {
		ch <- prometheus.MustNewConstMetric(descC2S(), prometheus.GaugeValue, float64(s.C2SStreams[d]), d)
	}
	type key struct{ domain, dir string }
	s2s := map[key]int{}
	for _, st := range s.S2S {
		s2s[key{st.Domain, oneOf(st.Direction, DirectionIn, DirectionOut)}]++
	}
	for k, n := range s2s {
		ch <- prometheus.MustNewConstMetric(descS2S(), prometheus.GaugeValue, float64(n), k.domain, k.dir)
	}
	ch <- prometheus.MustNewConstMetric(descRegs(), prometheus.GaugeValue, float64(s.SIPRegistrations))
	// Both directions are always reported, so a rate or alert has a
	// series to work on before the first subscription.
	for _, dir := range []string{DirectionIn, DirectionOut} {
		ch <- prometheus.MustNewConstMetric(descSubs(), prometheus.GaugeValue, float64(s.Subscriptions[dir]), dir)
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
