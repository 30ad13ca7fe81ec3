package session

// RFC 3994 isComposing documents and their mapping onto XEP-0085 chat
// states.
//
// Mapping (RFC 7573 leaves chat states out; this is ours, following the
// meaning each specification gives its states):
//
//	SIP -> XMPP: <state>active</state> -> composing;
//	             <state>idle</state>   -> paused (RFC 3994 §3 sends idle
//	             when the composer stops typing without sending, which is
//	             XEP-0085's paused; a sent message already ends the
//	             composing state on both sides).
//	XMPP -> SIP: composing -> active, with <refresh>60</refresh> so the
//	             SIP client expires it if the gateway goes quiet;
//	             paused, inactive, gone, active -> idle.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ContentTypeIsComposing is RFC 3994's media type.
const ContentTypeIsComposing = "application/im-iscomposing+xml"

// NSIsComposing is RFC 3994's XML namespace.
const NSIsComposing = "urn:ietf:params:xml:ns:im-iscomposing"

// RFC 3994 states.
const (
	ComposingActive = "active"
	ComposingIdle   = "idle"
)

// ComposingRefresh is the <refresh> interval, in seconds, sent with an
// active state: a receiver that hears nothing more within it falls back to
// idle (RFC 3994 §4), so a lost chat state does not leave "typing" shown.
const ComposingRefresh = 60

// IsComposing is an RFC 3994 §5 document.
type IsComposing struct {
	State       string    // ComposingActive or ComposingIdle
	LastActive  time.Time // zero when absent; UTC
	ContentType string    // what is being composed, "" when absent
	Refresh     int       // seconds, 0 when absent
}

// ParseIsComposing reads an application/im-iscomposing+xml document with
// the same hardening as ParseXMPPMessage. Unknown child elements are
// ignored (RFC 3994 §5 allows extensions). Errors wrap ErrMessageTooLarge
// or ErrMalformedMessage.
func ParseIsComposing(b []byte) (IsComposing, error) {
	if len(b) > MaxMessageBytes {
		return IsComposing{}, fmt.Errorf("session: iscomposing: %d bytes exceeds %d: %w", len(b), MaxMessageBytes, ErrMessageTooLarge)
	}
	c, err := parseIsComposing(b)
	if err != nil {
		return IsComposing{}, fmt.Errorf("session: iscomposing: %w", err)
	}
	return c, nil
}

func parseIsComposing(b []byte) (IsComposing, error) {
	r := newMsgReader(b, MaxMessageDepth)
	tok, err := r.next()
	if err != nil {
		return IsComposing{}, err
	}
	root, ok := tok.(*msgElem)
	if !ok || root.Local != "isComposing" || root.Space != NSIsComposing {
		return IsComposing{}, fmt.Errorf("root is not {%s}isComposing: %w", NSIsComposing, ErrMalformedMessage)
	}
	var c IsComposing
	seen := map[string]bool{}
	for {
		tok, err := r.next()
		if err != nil {
			return IsComposing{}, err
		}
		var e *msgElem
		switch t := tok.(type) {
		case msgEnd:
			if _, err := r.next(); err != io.EOF {
				if err == nil {
					err = fmt.Errorf("content after </isComposing>: %w", ErrMalformedMessage)
				}
				return IsComposing{}, err
			}
			if c.State == "" {
				return IsComposing{}, fmt.Errorf("no <state>: %w", ErrMalformedMessage)
			}
			return c, nil
		case *msgElem:
			e = t
		default:
			continue
		}
		if e.Space != NSIsComposing {
			if err := r.skip(); err != nil {
				return IsComposing{}, err
			}
			continue
		}
		s, err := r.text()
		if err != nil {
			return IsComposing{}, err
		}
		s = strings.TrimSpace(s)
		switch e.Local {
		case "state", "lastactive", "contenttype", "refresh":
			if seen[e.Local] {
				return IsComposing{}, fmt.Errorf("<%s> repeated: %w", e.Local, ErrMalformedMessage)
			}
			seen[e.Local] = true
		}
		switch e.Local {
		case "state":
			if s != ComposingActive && s != ComposingIdle {
				return IsComposing{}, fmt.Errorf("state %q: %w", cpimClip([]byte(s)), ErrMalformedMessage)
			}
			c.State = s
		case "lastactive":
			t, ok := parseStamp(s)
			if !ok {
				return IsComposing{}, fmt.Errorf("lastactive %q: %w", cpimClip([]byte(s)), ErrMalformedMessage)
			}
			c.LastActive = t
		case "contenttype":
			c.ContentType = s
		case "refresh":
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return IsComposing{}, fmt.Errorf("refresh %q: %w", cpimClip([]byte(s)), ErrMalformedMessage)
			}
			c.Refresh = n
		}
	}
}

// Marshal writes the document.
func (c IsComposing) Marshal() []byte {
	var w bytes.Buffer
	w.WriteString(xml.Header)
	w.WriteString(`<isComposing xmlns="` + NSIsComposing + "\">\n")
	w.WriteString("  <state>")
	msgEscape(&w, c.State, false)
	w.WriteString("</state>\n")
	if !c.LastActive.IsZero() {
		w.WriteString("  <lastactive>" + c.LastActive.UTC().Format(time.RFC3339Nano) + "</lastactive>\n")
	}
	if c.ContentType != "" {
		w.WriteString("  <contenttype>")
		msgEscape(&w, c.ContentType, false)
		w.WriteString("</contenttype>\n")
	}
	if c.Refresh > 0 {
		w.WriteString("  <refresh>" + strconv.Itoa(c.Refresh) + "</refresh>\n")
	}
	w.WriteString("</isComposing>\n")
	return w.Bytes()
}

// ChatState returns the XEP-0085 chat state for the document's state.
func (c IsComposing) ChatState() string {
	if c.State == ComposingActive {
		return ChatComposing
	}
	return ChatPaused
}

// IsComposingFor returns the document for an XEP-0085 chat state, or false
// for "" and unknown states.
func IsComposingFor(chatState string) (IsComposing, bool) {
	switch chatState {
	case ChatComposing:
		return IsComposing{State: ComposingActive, ContentType: "text/plain", Refresh: ComposingRefresh}, true
	case ChatActive, ChatPaused, ChatInactive, ChatGone:
		return IsComposing{State: ComposingIdle, ContentType: "text/plain"}, true
	}
	return IsComposing{}, false
}
