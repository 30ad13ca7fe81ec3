package sipside

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
)

// Resolver finds the SIP servers of a domain or host (RFC 3263).
// *addressing.Resolver satisfies it; tests use a static table.
type Resolver interface {
	ResolveSIP(ctx context.Context, domain string) ([]addressing.Target, error)
}

// maxDialogs bounds the dialog table; INVITEs beyond it get 503.
const maxDialogs = 65536

// Dialog is an INVITE dialog of an XMPP message session, inbound (we
// answered) or outbound (Server.Invite). It is removed from the server's
// table when it ends: BYE from either side, a failed or unacknowledged
// setup, or shutdown (which sends BYE).
type Dialog struct {
	s *Server
	// ID is Call-ID, local tag and remote tag joined; it names the dialog
	// in InviteOffer, Hangup and logs.
	ID        string
	CallID    string
	LocalTag  string
	RemoteTag string
	// Local is our user, Remote the peer's user (bare addresses).
	Local, Remote addressing.Address

	localURI, remoteURI   sip.Uri // From/To URIs of the dialog (im:)
	localName, remoteName string  // their display names, kept as sent
	uas                   bool
	acked                 chan struct{} // closed by the ACK of our 2xx (UAS)

	mu         sync.Mutex
	target     sip.Uri // the peer's Contact
	transport  string  // the transport the dialog was set up over
	source     string  // where the peer's requests came from (UAS)
	dest       string  // where we sent the INVITE (UAC)
	localCSeq  uint32
	remoteCSeq uint32
	confirmed  bool
	accepted   bool // the 2xx was sent (UAS) or Invite returned it (UAC)
	offering   bool // a re-INVITE is being answered
	ended      bool
	sdpID      uint64
	sdpVersion uint64
}

func dialogKey(callID, localTag, remoteTag string) string {
	return callID + "|" + localTag + "|" + remoteTag
}

func (d *Dialog) ackChan() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked
}

// ack confirms the dialog.
func (d *Dialog) ack(_ uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.confirmed = true
	select {
	case <-d.acked:
	default:
		close(d.acked)
	}
}

// rearm expects a new ACK (for the 2xx of a re-INVITE).
func (d *Dialog) rearm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.acked:
		d.acked = make(chan struct{})
	default:
	}
}

func (d *Dialog) isConfirmed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.confirmed
}

// remoteSeq checks and records the CSeq of an in-dialog request (RFC 3261
// §12.2.2: lower than the last one is out of order).
func (d *Dialog) remoteSeq(n uint32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n <= d.remoteCSeq && d.remoteCSeq != 0 {
		return false
	}
	d.remoteCSeq = n
	return true
}

func (d *Dialog) beginOffer() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.offering || !d.confirmed {
		return false
	}
	d.offering = true
	return true
}

func (d *Dialog) endOffer() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.offering = false
}

func (d *Dialog) setTarget(u sip.Uri) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target = u
}

// Bye ends the dialog from our side: BYE to the peer, the dialog removed
// whatever the answer, and for an inbound session the SessionHandler told
// ("hangup"). It returns the BYE's failure, if any.
func (d *Dialog) Bye(ctx context.Context) error {
	return d.s.endDialog(ctx, d, "hangup", true)
}

// dialogTable holds the live dialogs by ID.
type dialogTable struct {
	mu     sync.Mutex
	m      map[string]*Dialog
	closed bool // shutting down: no new dialogs
}

func (t *dialogTable) add(d *Dialog) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*Dialog)
	}
	if t.closed || len(t.m) >= maxDialogs || t.m[d.ID] != nil {
		return false
	}
	t.m[d.ID] = d
	return true
}

func (t *dialogTable) get(id string) *Dialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// remove deletes the dialog and reports whether it was there.
func (t *dialogTable) remove(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[id]
	delete(t.m, id)
	return ok
}

// closeAll refuses new dialogs from now on and returns the live ones.
func (t *dialogTable) closeAll() []*Dialog {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return t.all()
}

func (t *dialogTable) all() []*Dialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Dialog, 0, len(t.m))
	for _, d := range t.m {
		out = append(out, d)
	}
	return out
}

// Dialogs returns the number of live INVITE dialogs.
func (s *Server) Dialogs() int {
	s.dialogs.mu.Lock()
	defer s.dialogs.mu.Unlock()
	return len(s.dialogs.m)
}

// Hangup ends the dialog named id (InviteOffer.DialogID) with a BYE.
func (s *Server) Hangup(ctx context.Context, id string) error {
	d := s.dialogs.get(id)
	if d == nil {
		return fmt.Errorf("sipside: hangup %s: no such dialog", id)
	}
	return d.Bye(ctx)
}

// endDialog removes d (once), sends BYE when bye is set and the dialog
// got as far as a 2xx, and tells the SessionHandler (Ended) when the
// session had been established, inbound or outbound.
func (s *Server) endDialog(ctx context.Context, d *Dialog, reason string, bye bool) error {
	d.mu.Lock()
	if d.ended {
		d.mu.Unlock()
		return nil
	}
	d.ended = true
	established := d.accepted
	d.mu.Unlock()
	s.dialogs.remove(d.ID)
	var err error
	if bye && (established || !d.uas) {
		err = s.sendBye(ctx, d)
	}
	if established && s.opts.Sessions != nil {
		s.opts.Sessions.Ended(ctx, d.ID, d.CallID, reason)
	}
	s.log.Debug("session ended", "call_id", d.CallID, "reason", reason, "user", d.Local.BareJID(), "peer_user", d.Remote.BareJID())
	return err
}

// inDialogRequest builds a request in d (RFC 3261 §12.2.1.1).
func (s *Server) inDialogRequest(d *Dialog, method sip.RequestMethod) *sip.Request {
	d.mu.Lock()
	d.localCSeq++
	seq := d.localCSeq
	target := d.target
	d.mu.Unlock()
	req := sip.NewRequest(method, target)
	from := &sip.FromHeader{DisplayName: d.localName, Address: d.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", d.LocalTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{DisplayName: d.remoteName, Address: d.remoteURI, Params: sip.NewParams()}
	to.Params.Add("tag", d.RemoteTag)
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	return req
}

// sendBye sends BYE in d and waits for the answer (bounded by
// ForwardTimeout).
func (s *Server) sendBye(ctx context.Context, d *Dialog) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	req := s.inDialogRequest(d, sip.BYE)
	d.mu.Lock()
	fallback, transport := d.source, d.transport
	if !d.uas {
		fallback = d.dest
	}
	d.mu.Unlock()
	s.route(ctx, req, transport, fallback)
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("sipside: bye %s: %w", d.CallID, err)
	}
	if res.StatusCode >= 300 && res.StatusCode != 481 && res.StatusCode != 408 {
		return fmt.Errorf("sipside: bye %s: %w", d.CallID, &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	return nil
}

// route sets where an outgoing request goes when its Request-URI alone
// would not do: an IP literal is used as it is; a host name is looked up
// with Options.Resolver when there is one (taking the target with the
// URI's transport, else the first); when that finds nothing, fallback
// ("host:port", e.g. where the peer's requests came from) is used; with
// neither, sipgo's own DNS lookup decides. transport is used when the URI
// names none.
func (s *Server) route(ctx context.Context, req *sip.Request, transport, fallback string) {
	u := req.Recipient
	tp := strings.ToLower(transport)
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToLower(v)
	}
	if tp == "" {
		tp = "udp"
	}
	if strings.EqualFold(u.Scheme, "sips") && tp != "tls" {
		tp = "tls"
	}
	req.SetTransport(strings.ToUpper(tp))
	host := strings.Trim(u.Host, "[]")
	if _, err := netip.ParseAddr(host); err == nil {
		port := u.Port
		if port == 0 {
			port = sip.DefaultPort(tp)
		}
		req.SetDestination(net.JoinHostPort(host, strconv.Itoa(port)))
		return
	}
	if s.opts.Resolver != nil && host != "" {
		targets, err := s.opts.Resolver.ResolveSIP(ctx, host)
		if err != nil {
			s.log.Debug("in-dialog target not resolved", "host", host, "error", err)
		}
		if t, ok := pickTarget(targets, tp); ok {
			port := t.Port
			if u.Port != 0 {
				port = u.Port
			}
			req.SetTransport(strings.ToUpper(t.Transport))
			req.SetDestination(net.JoinHostPort(t.Host, strconv.Itoa(port)))
			return
		}
	}
	if fallback != "" {
		req.SetDestination(fallback)
	}
}

// pickTarget returns the first SIP target with transport tp, else the
// first SIP target.
func pickTarget(ts []addressing.Target, tp string) (addressing.Target, bool) {
	var first *addressing.Target
	for i := range ts {
		if ts[i].Protocol != "" && ts[i].Protocol != addressing.ProtocolSIP {
			continue
		}
		if strings.EqualFold(ts[i].Transport, tp) {
			return ts[i], true
		}
		if first == nil {
			first = &ts[i]
		}
	}
	if first == nil {
		return addressing.Target{}, false
	}
	return *first, true
}

// byeAll ends every dialog at shutdown: BYE for those past their 2xx,
// sent in parallel and bounded by two seconds in all. New INVITEs are
// answered 503 from then on; offers still with the SessionHandler end
// with the Serve context and remove their own dialogs.
func (s *Server) byeAll() {
	ds := s.dialogs.closeAll()
	if len(ds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			if err := s.endDialog(ctx, d, "shutdown", true); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Debug("bye at shutdown", "call_id", d.CallID, "error", err)
			}
		})
	}
	wg.Wait()
}

// detached is a context for calls made after a request's own work is
// over: the Serve context.
func (s *Server) detached() context.Context { return s.serveContext() }
