package sipside

import (
	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/session"
)

// Metrics receives the counts an operator watches. The daemon's
// *metrics.Metrics satisfies it.
type Metrics interface {
	// SIPTransaction counts a final response we sent, by request method
	// and status, statelessly or in a transaction.
	SIPTransaction(method string, status int)
	// MessageRouted counts a MESSAGE delivered, by path ("sip->sip").
	MessageRouted(path string)
	// DeliveryFailed counts a MESSAGE refused, by the XMPP condition its
	// status maps to (RFC 7247 §7), so both protocols count alike.
	DeliveryFailed(condition string)
	// SubscriptionStarted counts a presence subscription established:
	// "in" to a local presentity, "out" to a remote one.
	SubscriptionStarted(direction string)
}

// Paths and directions this package reports; the session layer reports
// the paths that cross to XMPP.
const (
	pathSIPToSIP = "sip->sip"
	directionIn  = "in"
	directionOut = "out"
)

// countResponse records a final response to a request of method.
// Challenges (401, 407) are part of a delivery, not its failure.
func (s *Server) countResponse(method string, status int) {
	m := s.opts.Metrics
	if m == nil || status < 200 {
		return
	}
	m.SIPTransaction(method, status)
	if method == string(sip.MESSAGE) && status >= 300 && status != 401 && status != 407 {
		m.DeliveryFailed(session.ConditionForSIPStatus(status))
	}
}

func (s *Server) countRouted() {
	if s.opts.Metrics != nil {
		s.opts.Metrics.MessageRouted(pathSIPToSIP)
	}
}

func (s *Server) countSubscription(direction string) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.SubscriptionStarted(direction)
	}
}
