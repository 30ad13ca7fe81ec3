package sipside

import (
	"github.com/emiago/sipgo/sip"
)

// accepted is the Accept value OPTIONS advertises: what the UMPP draft's
// flows carry (presence documents, SDP, pager-mode bodies).
const accepted = "application/pidf+xml, application/cpim-pidf+xml, application/sdp, text/plain, message/cpim, application/im-iscomposing+xml"

// handleOptions answers OPTIONS for a local domain itself (RFC 3261 §11.2).
func (s *Server) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.reply(req, tx, 200, "OK",
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", accepted),
		sip.NewHeader("Accept-Encoding", "identity"),
		sip.NewHeader("Allow-Events", "presence"),
		sip.NewHeader("Supported", ""),
	)
}
