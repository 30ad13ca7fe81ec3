package session

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseIsComposing(t *testing.T) {
	const open = `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">`
	tests := []struct {
		name    string
		in      string
		want    IsComposing
		wantErr error
	}{
		// RFC 3994 §7, first example (written from it).
		{"rfc3994 active", `<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing iscomposing.xsd">
  <state>active</state>
  <contenttype>text/plain</contenttype>
  <refresh>90</refresh>
</isComposing>`, IsComposing{State: ComposingActive, ContentType: "text/plain", Refresh: 90}, nil},
		// RFC 3994 §7, idle example.
		{"rfc3994 idle", open + `<state>idle</state><lastactive>2003-01-27T10:43:00Z</lastactive><contenttype>audio</contenttype></isComposing>`,
			IsComposing{State: ComposingIdle, LastActive: time.Date(2003, 1, 27, 10, 43, 0, 0, time.UTC), ContentType: "audio"}, nil},
		{"prefixed, extension ignored", `<c:isComposing xmlns:c="urn:ietf:params:xml:ns:im-iscomposing"><c:state> idle </c:state><x xmlns="urn:x"><c:state>active</c:state></x></c:isComposing>`,
			IsComposing{State: ComposingIdle}, nil},
		{"no state", open + `</isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"bad state", open + `<state>typing</state></isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"two states", open + `<state>idle</state><state>active</state></isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"bad refresh", open + `<state>active</state><refresh>-1</refresh></isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"bad lastactive", open + `<state>idle</state><lastactive>now</lastactive></isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"wrong root", `<isComposing xmlns="urn:x"><state>idle</state></isComposing>`, IsComposing{}, ErrMalformedMessage},
		{"entity bomb", `<!DOCTYPE i [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>` + open + `<state>&b;</state></isComposing>`, IsComposing{}, ErrMessageDTD},
		{"deep", open + strings.Repeat("<x>", 40) + strings.Repeat("</x>", 40) + `</isComposing>`, IsComposing{}, ErrMessageTooDeep},
		{"huge", open + strings.Repeat(" ", MaxMessageBytes) + `</isComposing>`, IsComposing{}, ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIsComposing([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			again, err := ParseIsComposing(got.Marshal())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip: %v %#v", err, again)
			}
		})
	}
}

func TestChatStateMapping(t *testing.T) {
	tests := []struct {
		chat      string
		state     string
		refresh   int
		ok        bool
		backState string // chat state after XMPP -> SIP -> XMPP
	}{
		{ChatComposing, ComposingActive, ComposingRefresh, true, ChatComposing},
		{ChatPaused, ComposingIdle, 0, true, ChatPaused},
		{ChatActive, ComposingIdle, 0, true, ChatPaused},
		{ChatInactive, ComposingIdle, 0, true, ChatPaused},
		{ChatGone, ComposingIdle, 0, true, ChatPaused},
		{"", "", 0, false, ""},
		{"typing", "", 0, false, ""},
	}
	for _, tt := range tests {
		c, ok := IsComposingFor(tt.chat)
		if ok != tt.ok || c.State != tt.state || c.Refresh != tt.refresh {
			t.Errorf("IsComposingFor(%q) = %#v, %v", tt.chat, c, ok)
			continue
		}
		if ok && c.ChatState() != tt.backState {
			t.Errorf("%q -> %q -> %q, want %q", tt.chat, c.State, c.ChatState(), tt.backState)
		}
	}
}
