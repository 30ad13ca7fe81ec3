// Package session is the UMPP core: it ties the SIP server (package
// sipside) and the XMPP host (package xmppside) into one UMPP server as
// draft-mahy-impp-unified-proposal-00 describes. SIP sets up sessions and
// carries presence between domains; XMPP carries the messages.
//
// The Gateway (gateway.go) decides, for every message and presence change
// of a local user, which protocol carries it, by the mode of the other
// domain (GatewayOptions.Mode: static [[peer]] configuration, then DNS):
//
//   - a UMPP peer (ModeUMPP): chat messages in an IM session set up with
//     SIP INVITE (draft §4.1), then XMPP <message/>s with the session's
//     thread over s2s, ended by BYE at idle, on failure or at shutdown
//     (gateway_im.go); presence by SIP SUBSCRIBE/NOTIFY with PIDF (draft
//     §4.2, gateway_presence.go);
//   - an XMPP-only peer (ModeXMPP): plain XMPP federation;
//   - a SIMPLE-only peer (ModeSIP): SIP MESSAGE, and SUBSCRIBE with sip:
//     URIs;
//   - local XMPP and SIMPLE users: the RFC 7247, RFC 7572 and RFC 8048
//     mapping. SIMPLE users appear to XMPP as one resource of their
//     account (DefaultSIPResource, "umpp-sip"; sipuser.go), registered
//     with the XMPP router while they have SIP registrations.
//
// Rosters are the one record of presence authorization for both kinds of
// client: a SIP SUBSCRIBE for a local user is allowed when the roster
// grants the watcher a subscription, otherwise pending while the user is
// asked; a SUBSCRIBE from a SIMPLE client pre-approves its presentity.
// Outgoing subscriptions follow roster changes, are persisted through
// store.Subscriptions, and are re-established by Start after a restart.
//
// The per-message path of an established session takes no lock beyond the
// table's shard and rewrites only from, to and <thread/> of the stanza the
// XMPP host serialized (retarget.go), so that a session adds about a
// microsecond and four allocations to a message (BenchmarkGatewayDeliver);
// SIP work for SIMPLE users runs on a fixed set of ordered worker lanes
// with bounded queues (a full lane is resource-constraint for the sender).
//
// Under the gateway:
//   - the session table (table.go): thread id <-> SIP dialog <-> local and
//     remote full JIDs behind the Table interface, with every session
//     ending (BYE, idle, peer failure, shutdown) and removed, and the
//     messages queued during setup handed back in order;
//   - the message mapping between SIP MESSAGE and XMPP <message/>
//     (message.go, message_xml.go, message_sip.go): RFC 7572 pager mode,
//     message/cpim (RFC 3862, cpim.go) and isComposing (RFC 3994) <->
//     XEP-0085 chat states (composing.go);
//   - XMPP presence <-> the PIDF mapping of package pidf (presence_xml.go);
//   - the one table that maps SIP status codes and XMPP stanza error
//     conditions onto each other (RFC 7247 §7), in errors.go;
//   - subpackage sdp: the draft's session descriptions.
//
// The package defines the small interfaces it needs from the protocol
// adapters (SIP, XMPP; cmd/umppd/gateway.go implements them on sipside
// and xmppside) and from the metrics (Metrics), and the Endpoint it hands
// the XMPP router for each SIP resource. It depends only on
// addressing, pidf and store among our packages. docs/federation.md
// describes the result for operators, with captured messages.
package session
