package xmppside

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"

	"github.com/umpp/umpp/store"
)

var errAuthz = errors.New("authorization identity not allowed")

// negotiate runs RFC 6120 stream negotiation: TLS (mandatory), SASL, and
// resource binding. It returns with c.user set to the bound full JID and
// the writer running.
func (c *conn) negotiate(ctx context.Context, direct bool) error {
	if direct {
		tc := tls.Server(c.raw, c.srv.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w: %w", errPeerGone, err)
		}
		c.useTLS(tc)
	}
	for {
		if err := c.openStream(); err != nil {
			return err
		}
		switch {
		case !c.secure:
			if err := c.writeSync("<stream:features><starttls xmlns='" + nsTLS + "'><required/></starttls></stream:features>"); err != nil {
				return err
			}
			if err := c.startTLS(ctx); err != nil {
				return err
			}
		case c.user.bare == "":
			if err := c.writeSync("<stream:features><mechanisms xmlns='" + nsSASL + "'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"); err != nil {
				return err
			}
			if err := c.authenticate(ctx); err != nil {
				return err
			}
			c.sr.restart()
		default:
			if err := c.writeSync("<stream:features><bind xmlns='" + nsBind + "'/><session xmlns='" + nsSession + "'><optional/></session></stream:features>"); err != nil {
				return err
			}
			return c.bind(ctx)
		}
	}
}

// errPeerGone marks failures after which nothing can be written.
var errPeerGone = errors.New("peer gone")

func (c *conn) useTLS(tc *tls.Conn) {
	c.nc = tc
	c.secure = true
	c.w = bufio.NewWriterSize(tc, 4096)
	c.sr = newStreamReader(tc, c.srv.opts.MaxStanzaBytes)
}

// openStream reads the client's stream header and answers with ours.
func (c *conn) openStream() error {
	c.headerSent = false
	hdr, err := c.sr.readHeader()
	if err != nil {
		return err
	}
	var to, version, defNS, streamNS, lang string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			to = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			c.peerFrom = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			version = a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			defNS = a.Value
		case a.Name.Space == "xmlns" && a.Name.Local == hdr.Name.Space:
			streamNS = a.Value
		case a.Name.Space == "xml" && a.Name.Local == "lang":
			lang = a.Value
		}
	}
	if hdr.Name.Local != "stream" || hdr.Name.Space == "" || streamNS != nsStream {
		return streamErr("invalid-namespace", fmt.Errorf("stream element %s:%s in %q", hdr.Name.Space, hdr.Name.Local, streamNS))
	}
	if defNS != nsClient {
		return streamErr("invalid-namespace", fmt.Errorf("default namespace %q", defNS))
	}
	d, err := parseAddr(to)
	if err != nil || d.local != "" || d.resource != "" || !c.srv.isLocal(d.domain) {
		return streamErr("host-unknown", fmt.Errorf("stream to %q", to))
	}
	if c.domain != "" && d.domain != c.domain {
		return streamErr("host-unknown", fmt.Errorf("stream restarted to %q after %q", d.domain, c.domain))
	}
	c.domain = d.domain
	if !strings.HasPrefix(version, "1.") {
		return streamErr("unsupported-version", fmt.Errorf("version %q", version))
	}
	if lang != "" {
		c.lang = lang
	}
	if err := c.writeSync(c.streamHeader()); err != nil {
		return err
	}
	c.headerSent = true
	return nil
}

// startTLS handles <starttls/> (RFC 6120 §5.4.2) and upgrades the
// connection.
func (c *conn) startTLS(ctx context.Context) error {
	var el element
	if err := c.sr.next(&el); err != nil {
		return err
	}
	if el.name.Local != "starttls" || el.ns() != nsTLS {
		return streamErr("policy-violation", fmt.Errorf("%s before STARTTLS", el.name.Local))
	}
	c.sr.release()
	if err := c.writeSync("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
		return err
	}
	tc := tls.Server(c.raw, c.srv.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w: %w", errPeerGone, err)
	}
	c.useTLS(tc)
	return nil
}

// saslElement is <auth/>, <response/> or <abort/>.
type saslElement struct {
	XMLName   xml.Name
	Mechanism string `xml:"mechanism,attr"`
	Payload   string `xml:",chardata"`
}

// authenticate runs SASL (RFC 6120 §6) until success. Failures are logged,
// counted per remote IP, and throttled.
func (c *conn) authenticate(ctx context.Context) error {
	for {
		var el element
		if err := c.sr.next(&el); err != nil {
			return err
		}
		var auth saslElement
		if el.ns() != nsSASL || el.name.Local != "auth" {
			if el.ns() == nsSASL && el.name.Local == "abort" {
				c.sr.release()
				if err := c.writeSync(saslFailure("aborted")); err != nil {
					return err
				}
				continue
			}
			return streamErr("not-authorized", fmt.Errorf("%s before authentication", el.name.Local))
		}
		if err := decodeElement(el.raw, &auth); err != nil {
			return streamErr("bad-format", err)
		}
		c.sr.release()
		if !c.srv.limiter.allowed(c.ip, time.Now()) {
			c.log.Warn("login throttled", "ip", c.ip)
			select {
			case <-time.After(c.srv.opts.AuthFailureDelay):
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := c.writeSync(saslFailure("temporary-auth-failure")); err != nil {
				return err
			}
			continue
		}
		ok, err := c.saslExchange(ctx, auth)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
}

func saslFailure(cond string) string {
	return "<failure xmlns='" + nsSASL + "'><" + cond + "/></failure>"
}

// saslExchange runs one SASL exchange. ok reports success; err is a
// stream-level problem.
func (c *conn) saslExchange(ctx context.Context, auth saslElement) (ok bool, err error) {
	var mech sasl.Mechanism
	switch auth.Mechanism {
	case "SCRAM-SHA-256":
		mech = sasl.ScramSha256
	case "SCRAM-SHA-1":
		mech = sasl.ScramSha1
	case "PLAIN":
		mech = sasl.Plain
	default:
		return false, c.writeSync(saslFailure("invalid-mechanism"))
	}
	var who addr // the account whose credentials were used
	lookup := func(username, identity []byte) (store.Credentials, error) {
		a, err := c.accountAddr(string(username))
		if err != nil {
			return store.Credentials{}, err
		}
		who = a
		if len(identity) > 0 && string(identity) != a.bare {
			return store.Credentials{}, errAuthz
		}
		u, err := c.srv.opts.Users.User(ctx, a.bare)
		if err != nil {
			return store.Credentials{}, fmt.Errorf("look up %s: %w", a.bare, err)
		}
		return u.Credentials, nil
	}
	salted := func(username, identity []byte, mechName string) ([]byte, []byte, int64, error) {
		cr, err := lookup(username, identity)
		if errors.Is(err, store.ErrNotFound) {
			// Carry on with made-up credentials so that an unknown account
			// fails at the proof, like a wrong password (no user oracle).
			salt, sp := c.srv.fakeCredentials(who.bare, mechName)
			return salt, sp, store.DefaultIterations, nil
		}
		if err != nil {
			return nil, nil, 0, err
		}
		salt, sp, iter, ok := cr.SCRAMLookup(mechName)
		if !ok {
			return nil, nil, 0, sasl.ErrAuthn
		}
		return salt, sp, iter, nil
	}
	permit := func(n *sasl.Negotiator) bool {
		user, pass, identity := n.Credentials()
		cr, err := lookup(user, identity)
		if err != nil {
			return false
		}
		return cr.VerifyPassword(string(pass))
	}
	opts := []sasl.Option{sasl.SaltedCredentials(salted)}
	if tc, isTLS := c.nc.(*tls.Conn); isTLS {
		opts = append(opts, sasl.TLSState(tc.ConnectionState()))
	}
	srv := sasl.NewServer(mech, permit, opts...)

	payload, present := auth.Payload, strings.TrimSpace(auth.Payload) != ""
	if !present {
		// No initial response: send an empty challenge (RFC 6120 §6.4.2).
		if err := c.writeSync("<challenge xmlns='" + nsSASL + "'/>"); err != nil {
			return false, err
		}
		resp, aborted, err := c.saslResponse()
		if err != nil || aborted {
			return false, err
		}
		payload = resp
	}
	for {
		data, derr := decodeSASL(payload)
		if derr != nil {
			return false, c.writeSync(saslFailure("incorrect-encoding"))
		}
		more, resp, serr := stepSafely(srv, data)
		if serr != nil {
			c.srv.limiter.fail(c.ip, time.Now())
			c.log.Warn("login failed", "jid", who.bare, "ip", c.ip, "mechanism", auth.Mechanism, "err", serr)
			cond := "not-authorized"
			if errors.Is(serr, errAuthz) {
				cond = "invalid-authzid"
			}
			return false, c.writeSync(saslFailure(cond))
		}
		enc := base64.StdEncoding.EncodeToString(resp)
		if !more {
			if err := c.writeSync("<success xmlns='" + nsSASL + "'>" + enc + "</success>"); err != nil {
				return false, err
			}
			c.user = who
			c.log = c.srv.log.With("addr", c.raw.RemoteAddr().String(), "domain", c.domain, "jid", who.bare)
			c.log.Debug("authenticated", "mechanism", auth.Mechanism)
			return true, nil
		}
		if enc == "" {
			enc = "="
		}
		if err := c.writeSync("<challenge xmlns='" + nsSASL + "'>" + enc + "</challenge>"); err != nil {
			return false, err
		}
		var aborted bool
		payload, aborted, err = c.saslResponse()
		if err != nil || aborted {
			return false, err
		}
	}
}

// stepSafely guards against panics in the SASL library on hostile input.
func stepSafely(n *sasl.Negotiator, data []byte) (more bool, resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sasl: %v", r)
		}
	}()
	return n.Step(data)
}

// saslResponse reads a <response/> or <abort/>.
func (c *conn) saslResponse() (payload string, aborted bool, err error) {
	var el element
	if err := c.sr.next(&el); err != nil {
		return "", false, err
	}
	var r saslElement
	if el.ns() != nsSASL {
		return "", false, streamErr("not-authorized", fmt.Errorf("%s during SASL", el.name.Local))
	}
	if err := decodeElement(el.raw, &r); err != nil {
		return "", false, streamErr("bad-format", err)
	}
	c.sr.release()
	switch el.name.Local {
	case "response":
		return r.Payload, false, nil
	case "abort":
		return "", true, c.writeSync(saslFailure("aborted"))
	}
	return "", false, streamErr("not-authorized", fmt.Errorf("%s during SASL", el.name.Local))
}

func decodeSASL(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("sasl payload: %w", err)
	}
	return b, nil
}

// accountAddr turns a SASL username into the account's bare address.
func (c *conn) accountAddr(username string) (addr, error) {
	j, err := jid.New(username, c.domain, "")
	if err != nil {
		return addr{}, fmt.Errorf("username %q: %w", username, err)
	}
	return addrFromJID(j), nil
}

type bindIQ struct {
	XMLName xml.Name `xml:"iq"`
	Type    string   `xml:"type,attr"`
	ID      string   `xml:"id,attr"`
	Bind    *struct {
		Resource string `xml:"resource"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
}

// bind handles resource binding (RFC 6120 §7), replacing an older session
// of the same full JID, which gets the conflict stream error.
func (c *conn) bind(ctx context.Context) error {
	for {
		var el element
		if err := c.sr.next(&el); err != nil {
			return err
		}
		if el.name.Local != "iq" {
			return streamErr("not-authorized", fmt.Errorf("%s before resource binding", el.name.Local))
		}
		var iq bindIQ
		if err := decodeElement(el.raw, &iq); err != nil {
			return streamErr("bad-format", err)
		}
		if iq.Bind == nil || iq.Type != "set" {
			reply := appendErrorReply(nil, &el, "", "", "not-authorized", "")
			c.sr.release()
			if err := c.writeSync(string(reply)); err != nil {
				return err
			}
			continue
		}
		res := strings.TrimSpace(iq.Bind.Resource)
		if res == "" {
			res = randomResource()
		}
		j, err := jid.New(c.user.local, c.domain, res)
		if err != nil {
			reply := appendErrorReply(nil, &el, "", "", "bad-request", "invalid resource")
			c.sr.release()
			if err := c.writeSync(string(reply)); err != nil {
				return err
			}
			continue
		}
		c.sr.release()
		c.user = addrFromJID(j)
		c.log = c.srv.log.With("addr", c.raw.RemoteAddr().String(), "domain", c.domain, "jid", c.user.full)
		c.out = make(chan outItem, c.srv.opts.QueueLen)
		c.writing.Store(true)
		go c.writeLoop()
		if old := c.srv.loc.Register(c); old != nil {
			c.log.Info("resource replaced by new login")
			old.Close("conflict")
		}
		var b []byte
		b = append(b, "<iq type='result'"...)
		b = appendAttr(b, "id", iq.ID)
		b = append(b, "><bind xmlns='"+nsBind+"'><jid>"...)
		b = appendText(b, c.user.full)
		b = append(b, "</jid></bind></iq>"...)
		c.send(b)
		c.log.Debug("bound")
		return nil
	}
}

// fakeCredentials derives a stable salt and a useless salted password for
// an account that does not exist, keyed by a secret of this server.
func (s *Server) fakeCredentials(bare, mech string) (salt, salted []byte) {
	m := hmac.New(sha256.New, s.fakeKey[:])
	m.Write([]byte("salt\x00" + bare))
	salt = m.Sum(nil)[:store.SaltSize]
	m.Reset()
	m.Write([]byte("salted\x00" + mech + "\x00" + bare))
	salted = m.Sum(nil)
	if strings.HasPrefix(mech, "SCRAM-SHA-1") {
		salted = salted[:sha1.Size]
	}
	return salt, salted
}
