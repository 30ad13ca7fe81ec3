package sipside

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// Inbound federation: requests from the SIP servers of peer UMPP domains
// (the draft's §4.1 INVITE and §4.2 SUBSCRIBE) carry a From in the peer's
// domain and a Request-URI naming one of our users. Options.PeerPolicy
// says which domains are peers; their requests are taken without digest
// authentication (a peer server has no account here).
//
// Not done yet: proving that the request really comes from the peer's
// server (TLS mutual authentication, RFC 5922, as the draft's §5 asks, or
// a check of the source address against the peer's resolved servers).
// Until then PeerPolicy should name only peers reached over trusted
// paths.

// isPeerDomain reports whether domain is a peer by PeerPolicy (never one
// of ours).
func (s *Server) isPeerDomain(domain string) bool {
	if s.opts.PeerPolicy == nil || domain == "" || s.domains[domain] {
		return false
	}
	return s.opts.PeerPolicy(domain)
}

// peerSender returns the bare JID of the sender of a request from a peer
// domain, and false when the request is not from one.
func (s *Server) peerSender(req *sip.Request) (string, bool) {
	from, ok := addressOf(req.From().Address)
	if !ok || !s.isPeerDomain(from.Domain) {
		return "", false
	}
	return from.BareJID(), true
}

// peerPresenceTarget is presenceTarget for a SUBSCRIBE from a peer
// domain: the event package was checked, the sender is the peer's user;
// the presentity must be a local user that exists.
func (s *Server) peerPresenceTarget(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, local bool, sender string) (presentity, watcher string, ok bool) {
	if !local || req.Method != sip.SUBSCRIBE {
		s.reply(req, tx, 403, "Forbidden - Peers only subscribe to local users")
		return "", "", false
	}
	presentity, ok = aorOf(req.Recipient)
	if !ok {
		s.reply(req, tx, 404, "Not Found")
		return "", "", false
	}
	exists, err := s.userExists(ctx, presentity)
	if err != nil {
		s.log.Error("presentity lookup failed", "call_id", callID(req), "method", string(req.Method), "error", err)
		s.reply(req, tx, 500, "Server Internal Error")
		return "", "", false
	}
	if !exists {
		s.reply(req, tx, 404, "Not Found")
		return "", "", false
	}
	return presentity, sender, true
}
