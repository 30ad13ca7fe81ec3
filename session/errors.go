package session

// The error-condition mapping between SIP and XMPP, RFC 7247 §7 (and the
// RFC 7572 rules for pager-mode messages). Both directions live here so the
// gateway maps errors in exactly one place.

// XMPP stanza error conditions (RFC 6120 §8.3.3).
const (
	CondBadRequest            = "bad-request"
	CondConflict              = "conflict"
	CondFeatureNotImplemented = "feature-not-implemented"
	CondForbidden             = "forbidden"
	CondGone                  = "gone"
	CondInternalServerError   = "internal-server-error"
	CondItemNotFound          = "item-not-found"
	CondJIDMalformed          = "jid-malformed"
	CondNotAcceptable         = "not-acceptable"
	CondNotAllowed            = "not-allowed"
	CondNotAuthorized         = "not-authorized"
	CondPolicyViolation       = "policy-violation"
	CondRecipientUnavailable  = "recipient-unavailable"
	CondRedirect              = "redirect"
	CondRegistrationRequired  = "registration-required"
	CondRemoteServerNotFound  = "remote-server-not-found"
	CondRemoteServerTimeout   = "remote-server-timeout"
	CondResourceConstraint    = "resource-constraint"
	CondServiceUnavailable    = "service-unavailable"
	CondSubscriptionRequired  = "subscription-required"
	CondUndefinedCondition    = "undefined-condition"
	CondUnexpectedRequest     = "unexpected-request"
)

// sipToXMPP holds the explicit rows of RFC 7247 §7.2 (SIP response code to
// XMPP condition); codes not listed map by class.
var sipToXMPP = map[int]string{
	401: CondNotAuthorized,
	403: CondForbidden,
	404: CondItemNotFound,
	405: CondFeatureNotImplemented,
	406: CondNotAcceptable,
	407: CondRegistrationRequired,
	408: CondRemoteServerTimeout,
	413: CondPolicyViolation,
	414: CondPolicyViolation,
	415: CondNotAcceptable,
	416: CondNotAcceptable,
	420: CondFeatureNotImplemented,
	423: CondResourceConstraint,
	440: CondPolicyViolation,
	480: CondRecipientUnavailable,
	481: CondItemNotFound,
	484: CondItemNotFound,
	485: CondItemNotFound,
	486: CondRecipientUnavailable,
	487: CondRecipientUnavailable,
	488: CondNotAcceptable,
	489: CondPolicyViolation,
	491: CondUnexpectedRequest,
	501: CondFeatureNotImplemented,
	502: CondRemoteServerNotFound,
	503: CondInternalServerError,
	504: CondRemoteServerTimeout,
	513: CondPolicyViolation,
	600: CondRecipientUnavailable,
	603: CondRecipientUnavailable,
	604: CondItemNotFound,
	606: CondNotAcceptable,
}

// ConditionForSIPStatus returns the XMPP stanza error condition for a
// final SIP error response (RFC 7247 §7.2). Codes below 300 have no
// condition and return "".
func ConditionForSIPStatus(code int) string {
	if c, ok := sipToXMPP[code]; ok {
		return c
	}
	switch {
	case code >= 300 && code < 400:
		return CondRedirect
	case code >= 400 && code < 500:
		return CondBadRequest
	case code >= 500 && code < 600:
		return CondInternalServerError
	case code >= 600 && code < 700:
		return CondRecipientUnavailable
	}
	return ""
}

// sipStatus is one row of RFC 7247 §7.1: the response code toward a full
// JID (a specific endpoint, 4xx) and toward a bare JID (the user, 6xx
// where the RFC gives one).
type sipStatus struct{ full, bare int }

var xmppToSIP = map[string]sipStatus{
	CondBadRequest:            {400, 400},
	CondConflict:              {400, 400},
	CondFeatureNotImplemented: {501, 501},
	CondForbidden:             {403, 603},
	CondGone:                  {410, 410},
	CondInternalServerError:   {500, 500},
	CondItemNotFound:          {404, 604},
	CondJIDMalformed:          {400, 400},
	CondNotAcceptable:         {406, 606},
	CondNotAllowed:            {403, 403},
	CondNotAuthorized:         {401, 401},
	CondPolicyViolation:       {403, 403},
	CondRecipientUnavailable:  {480, 600},
	CondRedirect:              {302, 302},
	CondRegistrationRequired:  {407, 407},
	CondRemoteServerNotFound:  {404, 404},
	CondRemoteServerTimeout:   {408, 408},
	CondResourceConstraint:    {500, 500},
	// RFC 7247 §7.1: service-unavailable must not become 503, which
	// would make a SIP element retry elsewhere; 403 says "no".
	CondServiceUnavailable:   {403, 403},
	CondSubscriptionRequired: {400, 400},
	CondUndefinedCondition:   {400, 400},
	CondUnexpectedRequest:    {491, 491},
}

// SIPStatusForCondition returns the SIP response code for an XMPP stanza
// error condition (RFC 7247 §7.1). bare says the failed request was
// addressed to a bare JID (the user rather than one of its endpoints),
// which selects the 6xx code where the RFC gives one. An unknown
// condition maps like undefined-condition.
func SIPStatusForCondition(cond string, bare bool) int {
	s, ok := xmppToSIP[cond]
	if !ok {
		s = xmppToSIP[CondUndefinedCondition]
	}
	if bare {
		return s.bare
	}
	return s.full
}
