package session

import "testing"

func TestConditionForSIPStatus(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{200, ""},
		{302, CondRedirect},
		{380, CondRedirect},
		{400, CondBadRequest},
		{401, CondNotAuthorized},
		{403, CondForbidden},
		{404, CondItemNotFound},
		{405, CondFeatureNotImplemented},
		{407, CondRegistrationRequired},
		{408, CondRemoteServerTimeout},
		{415, CondNotAcceptable},
		{420, CondFeatureNotImplemented},
		{423, CondResourceConstraint},
		{433, CondBadRequest}, // unlisted 4xx: by class
		{480, CondRecipientUnavailable},
		{481, CondItemNotFound},
		{486, CondRecipientUnavailable},
		{488, CondNotAcceptable},
		{489, CondPolicyViolation},
		{491, CondUnexpectedRequest},
		{500, CondInternalServerError},
		{502, CondRemoteServerNotFound},
		{503, CondInternalServerError},
		{504, CondRemoteServerTimeout},
		{580, CondInternalServerError},
		{603, CondRecipientUnavailable},
		{604, CondItemNotFound},
		{606, CondNotAcceptable},
		{699, CondRecipientUnavailable},
	}
	for _, tt := range tests {
		if got := ConditionForSIPStatus(tt.code); got != tt.want {
			t.Errorf("ConditionForSIPStatus(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestSIPStatusForCondition(t *testing.T) {
	tests := []struct {
		cond       string
		full, bare int
	}{
		{CondBadRequest, 400, 400},
		{CondFeatureNotImplemented, 501, 501},
		{CondForbidden, 403, 603},
		{CondItemNotFound, 404, 604},
		{CondNotAcceptable, 406, 606},
		{CondRecipientUnavailable, 480, 600},
		{CondRemoteServerNotFound, 404, 404},
		{CondRemoteServerTimeout, 408, 408},
		{CondServiceUnavailable, 403, 403},
		{CondUnexpectedRequest, 491, 491},
		{"no-such-condition", 400, 400},
	}
	for _, tt := range tests {
		if got := SIPStatusForCondition(tt.cond, false); got != tt.full {
			t.Errorf("SIPStatusForCondition(%q, full) = %d, want %d", tt.cond, got, tt.full)
		}
		if got := SIPStatusForCondition(tt.cond, true); got != tt.bare {
			t.Errorf("SIPStatusForCondition(%q, bare) = %d, want %d", tt.cond, got, tt.bare)
		}
	}
}

// Every condition the XMPP side can produce must map to a SIP error code
// (never 503, RFC 7247 §7.1), and every SIP error code must map back to a
// condition that the table knows.
func TestMappingIsClosed(t *testing.T) {
	for cond := range xmppToSIP {
		for _, bare := range []bool{false, true} {
			code := SIPStatusForCondition(cond, bare)
			if code < 300 || code > 699 || code == 503 {
				t.Errorf("SIPStatusForCondition(%q, %v) = %d: not a usable SIP error", cond, bare, code)
			}
		}
	}
	for code := 300; code < 700; code++ {
		cond := ConditionForSIPStatus(code)
		if _, ok := xmppToSIP[cond]; !ok {
			t.Errorf("ConditionForSIPStatus(%d) = %q: unknown condition", code, cond)
		}
	}
}
