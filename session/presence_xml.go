package session

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/umpp/umpp/pidf"
)

// XMPP <presence/> <-> pidf.XMPPPresence, for the RFC 8048 mapping.

// maxPresenceBytes bounds a presence stanza the gateway reads.
const maxPresenceBytes = 64 << 10

// parsePresence reads an availability presence (no type, or
// "unavailable"). ok is false for other types and unusable input.
func parsePresence(raw []byte) (p pidf.XMPPPresence, from string, ok bool) {
	if len(raw) > maxPresenceBytes || bytes.Contains(raw, []byte("<!")) {
		return p, "", false
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(raw); err != nil {
		return p, "", false
	}
	root := doc.Root()
	if root == nil || root.Tag != "presence" {
		return p, "", false
	}
	from = root.SelectAttrValue("from", "")
	switch root.SelectAttrValue("type", "") {
	case "":
		p.Available = true
	case "unavailable":
	default:
		return p, from, false
	}
	p.Resource = resourceOf(from)
	for _, c := range root.ChildElements() {
		if c.Space != "" {
			continue // elements of other namespaces (caps, ...) carry nothing PIDF maps
		}
		switch c.Tag {
		case "show":
			p.Show = c.Text()
		case "status":
			if p.Status == "" {
				p.Status = c.Text()
				p.StatusLang = c.SelectAttrValue("xml:lang", root.SelectAttrValue("xml:lang", ""))
			}
		case "priority":
			if n, err := strconv.Atoi(c.Text()); err == nil && n >= -128 && n <= 127 {
				p.Priority, p.HasPriority = int8(n), true
			}
		}
	}
	return p, from, true
}

func resourceOf(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[i+1:]
	}
	return ""
}

// presenceStanza writes p as a <presence/> from from to to (either may be
// empty).
func presenceStanza(from, to string, p pidf.XMPPPresence) []byte {
	var w bytes.Buffer
	w.WriteString("<presence")
	msgAttr(&w, "from", from)
	msgAttr(&w, "to", to)
	if !p.Available {
		w.WriteString(` type="unavailable"`)
	}
	if p.Available && p.Show == "" && p.Status == "" && !p.HasPriority {
		w.WriteString("/>")
		return w.Bytes()
	}
	w.WriteByte('>')
	if p.Available {
		switch p.Show {
		case "away", "chat", "dnd", "xa":
			w.WriteString("<show>" + p.Show + "</show>")
		}
	}
	if p.Status != "" {
		w.WriteString("<status")
		msgAttr(&w, "xml:lang", p.StatusLang)
		w.WriteByte('>')
		msgEscape(&w, p.Status, false)
		w.WriteString("</status>")
	}
	if p.HasPriority {
		fmt.Fprintf(&w, "<priority>%d</priority>", p.Priority)
	}
	w.WriteString("</presence>")
	return w.Bytes()
}

// subscriptionStanza writes a presence subscription stanza (RFC 6121 §3).
func subscriptionStanza(typ, from, to string) []byte {
	var w bytes.Buffer
	w.WriteString("<presence")
	msgAttr(&w, "from", from)
	msgAttr(&w, "to", to)
	msgAttr(&w, "type", typ)
	w.WriteString("/>")
	return w.Bytes()
}

// bestPresence folds the tuples of a SIP user's document into the one
// presence of its SIP resource: the first available tuple, or
// unavailable.
func bestPresence(doc *pidf.Document) pidf.XMPPPresence {
	if doc == nil {
		return pidf.XMPPPresence{}
	}
	ps := pidf.ToXMPP(doc)
	for _, p := range ps {
		if p.Available {
			p.Resource = ""
			return p
		}
	}
	return pidf.XMPPPresence{}
}
