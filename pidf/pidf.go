package pidf

import (
	"errors"
	"strings"
	"time"
)

// XML namespaces understood by this package.
const (
	// NamespacePIDF is the RFC 3863 namespace (application/pidf+xml).
	NamespacePIDF = "urn:ietf:params:xml:ns:pidf"
	// NamespaceCPIM is the namespace of draft-ietf-impp-cpim-pidf-08 that the
	// UMPP draft §4.2 uses in its NOTIFY bodies (application/cpim-pidf+xml).
	NamespaceCPIM = "urn:ietf:params:xml:ns:cpim-pidf"
	// NamespaceRPID is the RFC 4480 rich presence namespace.
	NamespaceRPID = "urn:ietf:params:xml:ns:pidf:rpid"
	// NamespaceDataModel is the RFC 4479 data model namespace (<dm:person>).
	NamespaceDataModel = "urn:ietf:params:xml:ns:pidf:data-model"
	// NamespaceJabberClient is the namespace of the <show/> element this
	// package carries inside a tuple's <status> (see the package doc).
	NamespaceJabberClient = "jabber:client"
)

// Content types of the two presence document formats.
const (
	ContentTypePIDF = "application/pidf+xml"
	ContentTypeCPIM = "application/cpim-pidf+xml"
)

// Values of Tuple.Basic.
const (
	BasicOpen   = "open"
	BasicClosed = "closed"
)

// Sentinel errors. Every error returned by Parse wraps exactly one of them,
// so a SIP server can choose its answer with errors.Is: ErrTooLarge -> 413,
// ErrNotPIDF -> 415, the others -> 400.
var (
	ErrTooLarge  = errors.New("pidf: document too large")
	ErrTooDeep   = errors.New("pidf: document nested too deeply")
	ErrDTD       = errors.New("pidf: DTD or entity declaration not allowed")
	ErrNotPIDF   = errors.New("pidf: not a PIDF presence document")
	ErrMalformed = errors.New("pidf: malformed document")
)

// Document is a presence document: the parts of RFC 3863 PIDF (or the older
// CPIM-PIDF) that this package keeps, plus the first RFC 4479 <dm:person>.
type Document struct {
	// Namespace is NamespacePIDF or NamespaceCPIM. Marshal treats "" as
	// NamespacePIDF.
	Namespace string
	// Entity is the presentity URI (pres: or sip:), kept as a string.
	Entity string
	// Tuples are the <tuple> elements in document order.
	Tuples []Tuple
	// Notes are the document-level <note> elements.
	Notes []Note
	// Person is the first <dm:person> element, or nil.
	Person *Person
}

// Tuple is one PIDF <tuple>.
type Tuple struct {
	ID string
	// Basic is BasicOpen, BasicClosed or "" (absent or unknown value).
	Basic string
	// Contact is the <contact> URI, "" when absent.
	Contact string
	// ContactPriority is the contact's priority attribute, in [0, 1], with
	// at most three decimals; meaningful only when HasContactPriority.
	ContactPriority    float64
	HasContactPriority bool
	Notes              []Note
	// Timestamp is in UTC; the zero Time when absent or unparsable.
	Timestamp time.Time
	// Show is the XMPP show value ("away", "chat", "dnd", "xa") carried in a
	// <show xmlns='jabber:client'> child of <status>, or "".
	Show string
}

// Note is a <note> with its optional xml:lang.
type Note struct {
	Lang string
	Text string
}

// Person is an RFC 4479 <dm:person> with its RFC 4480 activities.
type Person struct {
	ID string
	// Activities are the local names of the children of <rpid:activities>
	// ("away", "busy", "on-the-phone", ...), unknown ones included.
	Activities []string
	// Notes are the person's <dm:note> elements and the <rpid:note>
	// elements inside <rpid:activities>.
	Notes []Note
}

// ContentType returns the MIME type for a document namespace, or "" when the
// namespace is neither NamespacePIDF nor NamespaceCPIM. "" means
// NamespacePIDF, as in Marshal.
func ContentType(ns string) string {
	switch ns {
	case NamespacePIDF, "":
		return ContentTypePIDF
	case NamespaceCPIM:
		return ContentTypeCPIM
	}
	return ""
}

// NamespaceForContentType returns the document namespace for a Content-Type
// header value (parameters and case are ignored) and whether it is one of
// the two presence types.
func NamespaceForContentType(ct string) (string, bool) {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, ContentTypePIDF):
		return NamespacePIDF, true
	case strings.EqualFold(mt, ContentTypeCPIM):
		return NamespaceCPIM, true
	}
	return "", false
}

// Available reports whether any tuple's basic status is open.
func (d *Document) Available() bool {
	if d == nil {
		return false
	}
	for i := range d.Tuples {
		if d.Tuples[i].Basic == BasicOpen {
			return true
		}
	}
	return false
}

// Equal reports whether two documents carry the same information; a server
// can use it to skip NOTIFYs that would change nothing. Timestamps are
// compared with time.Time.Equal; nil and empty slices are equal.
func (d *Document) Equal(o *Document) bool {
	if d == nil || o == nil {
		return d == o
	}
	if d.Namespace != o.Namespace || d.Entity != o.Entity ||
		len(d.Tuples) != len(o.Tuples) || !notesEqual(d.Notes, o.Notes) {
		return false
	}
	for i := range d.Tuples {
		if !d.Tuples[i].equal(&o.Tuples[i]) {
			return false
		}
	}
	if d.Person == nil || o.Person == nil {
		return d.Person == o.Person
	}
	return d.Person.equal(o.Person)
}

func (t *Tuple) equal(o *Tuple) bool {
	return t.ID == o.ID && t.Basic == o.Basic && t.Contact == o.Contact &&
		t.HasContactPriority == o.HasContactPriority &&
		(!t.HasContactPriority || t.ContactPriority == o.ContactPriority) &&
		t.Timestamp.Equal(o.Timestamp) && t.Show == o.Show &&
		notesEqual(t.Notes, o.Notes)
}

func (p *Person) equal(o *Person) bool {
	if p.ID != o.ID || len(p.Activities) != len(o.Activities) || !notesEqual(p.Notes, o.Notes) {
		return false
	}
	for i := range p.Activities {
		if p.Activities[i] != o.Activities[i] {
			return false
		}
	}
	return true
}

func notesEqual(a, b []Note) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// validShow reports whether s is one of the four XMPP show values.
func validShow(s string) bool {
	switch s {
	case "away", "chat", "dnd", "xa":
		return true
	}
	return false
}

// isNCName reports whether s is a non-empty XML NCName made of ASCII
// characters only (every RPID activity name is ASCII; names outside ASCII are
// dropped rather than risk writing a name another parser refuses).
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		case i > 0 && (c == '-' || c == '.' || c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return true
}
