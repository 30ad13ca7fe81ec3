// Package pidf reads and writes presence documents for the SIP side of a
// UMPP server and maps them to and from XMPP presence.
//
// # Formats
//
//   - RFC 3863 PIDF, application/pidf+xml, namespace
//     urn:ietf:params:xml:ns:pidf: <presence entity>, <tuple id> with
//     <status><basic>, <contact priority>, <note xml:lang>, <timestamp>, and
//     document-level <note>s.
//   - The older CPIM-PIDF of draft-ietf-impp-cpim-pidf-08,
//     application/cpim-pidf+xml, namespace urn:ietf:params:xml:ns:cpim-pidf,
//     which the UMPP draft (draft-mahy-impp-unified-proposal-00 §4.2) uses for
//     its NOTIFY bodies. It has the same structure; Document.Namespace says
//     which of the two a document is in, and Marshal writes it back in that
//     namespace. ContentType and NamespaceForContentType convert between the
//     namespace and the SIP Content-Type.
//   - RFC 4479 §3.3 <dm:person> (urn:ietf:params:xml:ns:pidf:data-model)
//     with its <dm:note>s, and in it RFC 4480 §3.2 <rpid:activities>
//     (urn:ietf:params:xml:ns:pidf:rpid): every activity is kept by its
//     local name, unknown ones and ones from other namespaces included, and
//     <rpid:note>s inside <rpid:activities> join the person's notes. Real
//     SIMPLE clients (baresip, Kamailio's presence_xml) send these.
//
// What a Document keeps: the entity; per tuple its id, basic value,
// first status, first contact and its priority, notes, first timestamp (in
// UTC) and the carried XMPP show; the document notes; the first person's id,
// activities and notes. Everything else is ignored, not an error: other
// extension elements (RFC 3863 §4.1.4 says unknown extensions must be
// ignored), <dm:device>, further <dm:person>s, activity timing
// (from/until), the text of <rpid:other>, and tuples or notes in a namespace
// other than the root's. Text is trimmed; empty notes are dropped; a basic
// other than "open"/"closed", a contact priority that is not a decimal in
// [0, 1], or a timestamp that is not RFC 3339 is treated as absent. Contact
// priorities are kept to three decimals, the RFC 3863 qvalue precision.
//
// # Hardening
//
// Parse reads untrusted network input. It refuses, before building any tree,
// documents larger than Limits.MaxBytes (ErrTooLarge, default 64 KiB),
// nested deeper than Limits.MaxDepth (ErrTooDeep, default 32), containing
// any <!DOCTYPE> or other declaration (ErrDTD, so no entity is ever defined
// or expanded and a "billion laughs" bomb costs one token), and containing
// undeclared entity references, non-UTF-8 encodings, several roots or text
// outside the root (ErrMalformed). The root must be <presence> in one of
// the two namespaces (else ErrNotPIDF) with a non-empty entity attribute
// (else ErrMalformed). The XML declaration, a UTF-8 byte order mark,
// comments and processing instructions are tolerated.
//
// # XMPP mapping
//
// FromXMPP and ToXMPP implement RFC 8048 (which obsoletes RFC 7248) §4
// (XMPP to SIP) and §5 (SIP to XMPP) on protocol-neutral values
// (XMPPPresence): presence without a type <-> basic open, type
// "unavailable" <-> closed; resource <-> tuple id "ID-<resource>" (escaped by
// TupleIDFromResource so that it is an XML ID); <status/> <-> <note> with
// xml:lang; priority 0..127 <-> contact priority 0..1 (negative priorities
// are not mapped).
//
// RFC 8048 gives <show/> no PIDF mapping. This package carries it in an
// extension element inside the tuple status,
//
//	<status><basic>open</basic><show xmlns="jabber:client">dnd</show></status>
//
// which another UMPP server maps back exactly and other PIDF readers ignore,
// and also as RFC 4480 activities on a <dm:person> (away and xa -> away,
// dnd -> busy) so that SIP clients show something sensible. In the other
// direction busy, on-the-phone and meeting become dnd and away becomes away.
//
// # Not implemented
//
//   - RFC 5196 capabilities (caps:servcaps) and the other RFC 4480 elements
//     (mood, place-is, place-type, privacy, sphere, class, relationship,
//     service-class, status-icon, time-offset, user-input): ignored.
//   - RFC 5262 partial PIDF (application/pidf-diff+xml) and RFC 5263
//     session-oriented documents: not accepted; use full documents.
//   - RFC 4479 <dm:device> and the RFC 4479 §3.4 composition rules: the
//     first person only is kept.
//   - RFC 3863 <im:im> (urn:ietf:params:xml:ns:pidf:im) status values and
//     the mustUnderstand attribute: ignored.
//   - Encodings other than UTF-8 (RFC 3863 requires UTF-8 support only).
//   - Address mapping (pres:/sip: URIs <-> JIDs) lives in the addressing
//     package; FromXMPP sets no contact URI, callers may fill Tuple.Contact.
package pidf
