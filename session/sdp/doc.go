// Package sdp reads and writes the session descriptions that UMPP servers
// exchange in SIP INVITEs to set up sessions of XMPP messages
// (draft-mahy-impp-unified-proposal-00 §4.1), on top of
// github.com/pion/sdp/v3.
//
// # What it implements
//
//   - SDP syntax, RFC 4566 as revised by RFC 8866: Parse reads a
//     description into a Description (origin, session name, session and
//     media connection data, media lines with their attributes);
//     Marshal writes one in the order RFC 8866 §5 requires (v, o, s, c, t,
//     a before the media; per media m, c, a), with CRLF line ends.
//   - The draft's own bytes. Its example offer puts "c=" and "t=" lines
//     after the audio section, as a preamble of the message section that
//     follows, and uses the proto token "xmpp/tcp", which pion/sdp
//     refuses. Parse normalizes before handing the text to pion: a c= line
//     that ends a media section (after its a= lines, or together with a
//     t= line) belongs to the next media section; t= lines inside media
//     sections belong to the session (duplicates dropped); lines of a
//     section are put in RFC order; media types and proto tokens are
//     replaced by placeholders pion accepts and restored afterwards.
//   - The draft's XMPP message stream: "m=message <port> xmpp/tcp chat"
//     (or groupchat), "a=jid:" the full JID of the sender, "a=thread:" the
//     XMPP thread, "a=direction:" both, active or passive (in the manner
//     of the COMEDIA connection attribute). XMPPSession reads it from a
//     Description; NewOffer builds an offer.
//   - RFC 3264 offer/answer: Answer builds the answer to an offer with one
//     media line per offered line in the same order; the first xmpp/tcp
//     message stream is accepted with our JID and the complementary
//     direction (passive for an offer of both or active, active for
//     passive, as the draft's example answer shows), every other stream is
//     rejected with port 0 and its format list kept (RFC 3264 §6).
//   - The fields SDP shares with MSRP (RFC 4975, RFC 7573): "m=message
//     <port> TCP/MSRP *" parses like any media and is rejected in an
//     answer, so an MSRP-only peer learns that we need xmpp/tcp. Carrying
//     a=path/a=accept-types for an MSRP relay is left to a later version.
//
// # Errors
//
// Parse returns errors wrapping ErrNotSDP (the body is not SDP: a SIP
// server answers 415), or ErrMalformed (it is broken SDP: 400 or 488);
// XMPPSession and Answer return ErrNoXMPPMedia when there is no usable
// xmpp/tcp message stream (488).
//
// # Not done
//
//   - Repeat times (r=), time zones (z=), encryption keys (k=), bandwidth
//     (b=), e=, p=, u= and i= lines are accepted and dropped: nothing in a
//     UMPP session uses them, and Marshal never writes them.
//   - Several time descriptions: the first t= is kept; Marshal writes it
//     (default "t=0 0").
//   - Multicast connection data is kept as text, not interpreted.
package sdp
