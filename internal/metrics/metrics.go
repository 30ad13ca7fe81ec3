package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Message paths for MessageRouted: where a message came from and where
// it was delivered.
const (
	PathXMPPToXMPP = "xmpp->xmpp"
	PathXMPPToSIP  = "xmpp->sip"
	PathSIPToXMPP  = "sip->xmpp"
	PathSIPToSIP   = "sip->sip"
)

// Subscription directions: "in" is a watcher elsewhere (a remote domain,
// or a local client of the other protocol) subscribed to a local user's
// presence; "out" is a local user subscribed to a remote presentity.
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

// Reasons an IM session ends, for SessionEnded.
const (
	EndBye      = "bye"      // either side sent BYE
	EndIdle     = "idle"     // [session] idle_timeout passed
	EndRejected = "rejected" // the INVITE got a final non-2xx answer
	EndError    = "error"    // the XMPP stream or the dialog failed
	EndShutdown = "shutdown" // umppd stopped
)

// Metrics is the instrumentation of one daemon. Build it with New; a nil
// *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry

	sipTx        *prometheus.CounterVec
	imActive     prometheus.Gauge
	imStarted    prometheus.Counter
	imEnded      *prometheus.CounterVec
	subsStarted  *prometheus.CounterVec
	routed       *prometheus.CounterVec
	routedBy     map[string]prometheus.Counter // read-only after New
	failures     *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
}

// Options configure New.
type Options struct {
	// Version is reported as umpp_build_info{version}.
	Version string
	// Snapshot, when set, is called at every scrape for the live counts
	// (streams, registrations, subscriptions). It must be safe for
	// concurrent use and cheap: it runs on the scrape path.
	Snapshot func() Snapshot
}

// New returns the metrics of one daemon on a registry of their own, with
// the Go runtime and process collectors.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sipTx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umpp_sip_transactions_total",
			Help: "SIP server transactions by request method and final response status.",
		}, []string{"method", "status"}),
		imActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "umpp_im_sessions_active",
			Help: "UMPP IM sessions (INVITE im: dialogs bound to an XMPP thread) open now.",
		}),
		imStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umpp_im_sessions_started_total",
			Help: "UMPP IM sessions established.",
		}),
		imEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umpp_im_sessions_ended_total",
			Help: "UMPP IM sessions ended, by reason (bye, idle, rejected, error, shutdown).",
		}, []string{"reason"}),
		subsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umpp_presence_subscriptions_started_total",
			Help: "Presence subscriptions established, by direction (in: to a local user; out: to a remote presentity).",
		}, []string{"direction"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umpp_messages_routed_total",
			Help: "Messages delivered, by path (xmpp->xmpp, xmpp->sip, sip->xmpp, sip->sip).",
		}, []string{"path"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umpp_delivery_failures_total",
			Help: "Stanzas and SIP requests that could not be delivered, by XMPP error condition (RFC 6120 §8.3.3; SIP failures mapped per RFC 7247 §7).",
		}, []string{"condition"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "umpp_store_duration_seconds",
			Help:    "Latency of store calls, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "umpp_build_info",
		Help: "Always 1; the version label names the running umppd.",
	}, []string{"version"})
	build.WithLabelValues(opts.Version).Set(1)
	// The series of the small, fixed label sets exist from the start at 0,
	// so that rates and alerts work before the first event.
	// The per-path counters are resolved once: MessageRouted runs for
	// every message, and a label lookup per call costs a hash and a
	// shared lock.
	m.routedBy = make(map[string]prometheus.Counter, 5)
	for _, p := range []string{PathXMPPToXMPP, PathXMPPToSIP, PathSIPToXMPP, PathSIPToSIP, "other"} {
		m.routedBy[p] = m.routed.WithLabelValues(p)
	}
	for _, r := range []string{EndBye, EndIdle, EndRejected, EndError, EndShutdown} {
		m.imEnded.WithLabelValues(r)
	}
	for _, d := range []string{DirectionIn, DirectionOut} {
		m.subsStarted.WithLabelValues(d)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.sipTx, m.imActive, m.imStarted, m.imEnded, m.subsStarted,
		m.routed, m.failures, m.storeLatency,
	)
	if opts.Snapshot != nil {
		m.reg.MustRegister(&snapshotCollector{snap: opts.Snapshot})
	}
	return m
}

// Registry returns the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SIPTransaction records one server transaction answered with a final
// status (>= 200). Call it where the final response is sent.
func (m *Metrics) SIPTransaction(method string, status int) {
	if m == nil {
		return
	}
	m.sipTx.WithLabelValues(sipMethod(method), statusLabel(status)).Inc()
}

// SessionStarted records an IM session established (2xx to INVITE im:).
func (m *Metrics) SessionStarted() {
	if m == nil {
		return
	}
	m.imStarted.Inc()
	m.imActive.Inc()
}

// SessionEnded records the end of a session SessionStarted counted, with
// one of the End* reasons (others are recorded as "other").
func (m *Metrics) SessionEnded(reason string) {
	if m == nil {
		return
	}
	m.imActive.Dec()
	m.imEnded.WithLabelValues(oneOf(reason, EndBye, EndIdle, EndRejected, EndError, EndShutdown)).Inc()
}

// SubscriptionStarted records a presence subscription established, in
// DirectionIn or DirectionOut. The number active is read from snapshots.
func (m *Metrics) SubscriptionStarted(direction string) {
	if m == nil {
		return
	}
	m.subsStarted.WithLabelValues(oneOf(direction, DirectionIn, DirectionOut)).Inc()
}

// MessageRouted records a message delivered along path (one of the Path*
// constants).
func (m *Metrics) MessageRouted(path string) {
	if m == nil {
		return
	}
	c, ok := m.routedBy[path]
	if !ok {
		c = m.routedBy["other"]
	}
	c.Inc()
}

// DeliveryFailed records a stanza or request that could not be delivered,
// by its RFC 6120 stanza error condition ("service-unavailable",
// "remote-server-not-found", "resource-constraint", ...).
func (m *Metrics) DeliveryFailed(condition string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(stanzaCondition(condition)).Inc()
}

// ObserveStore records the latency of one store call.
func (m *Metrics) ObserveStore(op string, d time.Duration) {
	if m == nil {
		return
	}
	m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
}

// oneOf returns s if it is one of the allowed values, else "other".
func oneOf(s string, allowed ...string) string {
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	return "other"
}

// sipMethod returns the method if it is one recorded by name (RFC 3261
// and the extensions umppd speaks), else "other".
func sipMethod(m string) string {
	return oneOf(strings.ToUpper(m), "REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS",
		"MESSAGE", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "UPDATE", "PRACK", "REFER")
}

func statusLabel(code int) string {
	if code < 100 || code > 699 {
		return "other"
	}
	return strconv.Itoa(code)
}

// stanzaCondition returns c if it is an RFC 6120 §8.3.3 defined
// condition, else "other".
func stanzaCondition(c string) string {
	return oneOf(c, "bad-request", "conflict", "feature-not-implemented",
		"forbidden", "gone", "internal-server-error", "item-not-found", "jid-malformed",
		"not-acceptable", "not-allowed", "not-authorized", "policy-violation",
		"recipient-unavailable", "redirect", "registration-required",
		"remote-server-not-found", "remote-server-timeout", "resource-constraint",
		"service-unavailable", "subscription-required", "undefined-condition",
		"unexpected-request")
}
