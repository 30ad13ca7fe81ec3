package sipside

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// rejection is the outcome of a failed check: a status, a reason phrase
// and header fields the response must carry (Unsupported, Accept, Allow).
type rejection struct {
	code    int
	reason  string
	headers []sip.Header
}

// knownMethods are the methods of RFC 3261 and its extensions that this
// server recognizes (RFC 3261 §8.2.1: others get 501).
var knownMethods = map[sip.RequestMethod]bool{
	sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true,
	sip.OPTIONS: true, sip.REGISTER: true, sip.MESSAGE: true,
	sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.PUBLISH: true, sip.INFO: true,
	sip.PRACK: true, sip.UPDATE: true, sip.REFER: true,
}

// singleValued are header fields that may appear once (RFC 3261 §20,
// §7.3.1: only comma-list headers may repeat).
var singleValued = []string{"Call-ID", "From", "To", "CSeq", "Content-Length", "Content-Type", "Max-Forwards", "Expires"}

// bodyTypes is what we interpret per method (RFC 3261 §8.2.3): a body of
// another type is answered 415 with Accept.
var bodyTypes = map[sip.RequestMethod][]string{
	sip.MESSAGE: {"text/plain", "message/cpim", "application/im-iscomposing+xml"}, // RFC 3428, 3862, 3994
	sip.INVITE:  {"application/sdp"},
	sip.PUBLISH: {"application/pidf+xml", "application/cpim-pidf+xml"},
}

// supportedOptions are the option tags we implement (Require and
// Proxy-Require naming others get 420, RFC 3261 §8.2.2.3, §16.3 item 6).
var supportedOptions = map[string]bool{}

// validate runs the request checks of RFC 3261 §8.2 and §16.3 that sipgo
// does not, in the order the RFC gives them. raw is the message's header
// section as parsed by parseRaw (nil when not available), used where sipgo
// merges or rewrites what it read. A nil result means the request may go
// on to its handler.
func validate(req *sip.Request, raw *rawMessage, maxBytes int) *rejection {
	bad := func(why string) *rejection { return &rejection{code: 400, reason: "Bad Request - " + why} }

	// §8.2 / §16.3 item 1: reasonable syntax.
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return &rejection{code: 505, reason: "Version Not Supported"}
	}
	if req.Via() == nil {
		return bad("Missing Via")
	}
	for _, name := range []string{"From", "To", "Call-ID", "CSeq"} {
		if req.GetHeader(name) == nil {
			return bad("Missing " + name)
		}
	}
	for _, name := range singleValued {
		if n := countHeader(req, raw, name); n > 1 {
			return bad("Duplicate " + name)
		}
	}
	if raw != nil {
		for _, name := range []string{"from", "to"} {
			if len(splitComma(raw.first(name))) > 1 {
				return bad("Multiple values in " + name)
			}
		}
	}
	cseq := req.CSeq()
	if !cseqMatches(req, raw) {
		return bad("CSeq method does not match request")
	}
	if cseq.SeqNo >= 1<<31 {
		return bad("CSeq out of range")
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() > 255 {
		return bad("Max-Forwards out of range")
	}
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err != nil || n > 1<<32-1 {
			return bad("Expires out of range")
		}
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return bad("Content-Length does not match body")
	}
	if maxBytes > 0 && len(req.Body()) > maxBytes {
		return &rejection{code: 413, reason: "Request Entity Too Large"}
	}
	if branch, ok := req.Via().Params.Get("branch"); ok && branch == sip.RFC3261BranchMagicCookie {
		// RFC 4475 §3.2.1: the cookie without an identifier.
		return bad("Empty branch")
	}

	// §8.2.1 Method inspection.
	if !knownMethods[req.Method] {
		return &rejection{code: 501, reason: "Not Implemented"}
	}

	// §8.2.2.1 To and Request-URI.
	if !knownScheme(req.Recipient.Scheme) {
		return &rejection{code: 416, reason: "Unsupported URI Scheme"}
	}
	if req.Recipient.Headers != nil && req.Recipient.Headers.Length() > 0 {
		// RFC 3261 §19.1.1 table: headers are not allowed in a
		// Request-URI (RFC 4475 §3.1.2.11).
		return bad("Headers in Request-URI")
	}
	if raw != nil && raw.lineOK && strings.Contains(raw.uri, "?") && isSIPScheme(req.Recipient.Scheme) {
		return bad("Headers in Request-URI")
	}

	// §8.2.2.3 Require, §16.3 item 6 Proxy-Require. Not for ACK/CANCEL.
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		var unsupported []string
		for _, name := range []string{"Require", "Proxy-Require"} {
			for _, h := range req.GetHeaders(name) {
				for _, tag := range strings.Split(h.Value(), ",") {
					tag = strings.TrimSpace(tag)
					if tag != "" && !supportedOptions[strings.ToLower(tag)] {
						unsupported = append(unsupported, tag)
					}
				}
			}
		}
		if len(unsupported) > 0 {
			return &rejection{code: 420, reason: "Bad Extension",
				headers: []sip.Header{sip.NewHeader("Unsupported", strings.Join(unsupported, ", "))}}
		}
	}

	// §8.2.3 Content processing.
	if len(req.Body()) > 0 {
		if allowed, ok := bodyTypes[req.Method]; ok {
			ct := ""
			if h := req.ContentType(); h != nil {
				ct = mediaType(h.Value())
			}
			if !contains(allowed, ct) {
				return &rejection{code: 415, reason: "Unsupported Media Type",
					headers: []sip.Header{sip.NewHeader("Accept", strings.Join(allowed, ", "))}}
			}
		}
		if h := req.GetHeader("Content-Encoding"); h != nil && !strings.EqualFold(strings.TrimSpace(h.Value()), "identity") {
			return &rejection{code: 415, reason: "Unsupported Media Type",
				headers: []sip.Header{sip.NewHeader("Accept-Encoding", "identity")}}
		}
	}

	// RFC 3261 §20.10 (RFC 4475 §3.1.2.13): a Contact URI with headers or
	// parameters must be in name-addr form.
	if req.Method == sip.REGISTER && raw != nil {
		for _, c := range raw.values("contact") {
			for _, v := range splitComma(c) {
				if !strings.Contains(v, "<") && strings.Contains(v, "?") {
					return bad("Contact URI with headers must be enclosed in <>")
				}
			}
		}
	}
	return nil
}

func isSIPScheme(s string) bool {
	return strings.EqualFold(s, "sip") || strings.EqualFold(s, "sips")
}

// countHeader counts a header's occurrences, from the raw header section
// when there is one (sipgo keeps only some duplicates).
func countHeader(req *sip.Request, raw *rawMessage, name string) int {
	n := len(req.GetHeaders(name))
	if raw != nil {
		lname := strings.ToLower(name)
		c := 0
		for _, h := range raw.headers {
			if h.name == lname {
				c++
			}
		}
		if c > n {
			n = c
		}
	}
	return n
}

// mediaType returns the lower-case type/subtype of a Content-Type value.
func mediaType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cseqMatches compares the CSeq method with the request method
// (RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17). Methods are case-sensitive;
// the raw text is used when there is one, since sipgo may change case.
func cseqMatches(req *sip.Request, raw *rawMessage) bool {
	if raw != nil && raw.lineOK {
		f := strings.Fields(raw.first("cseq"))
		return len(f) == 2 && f[1] == raw.method
	}
	return strings.EqualFold(string(req.CSeq().MethodName), string(req.Method))
}
