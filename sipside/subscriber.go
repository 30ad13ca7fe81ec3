package sipside

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/pidf"
)

// The subscriber: SUBSCRIBE requests sent on behalf of local watchers to
// presentities of other domains (RFC 6665 §4.1, RFC 3856, draft §4.2),
// kept alive until Unsubscribe or shutdown.
//
//   - The initial SUBSCRIBE names the presentity by its pres: URI in the
//     Request-URI and To, the watcher by its pres: URI in From (draft
//     §4.2; sip: URIs for SIMPLE-only peers, SubscribeRequest.SIPURIs),
//     our sip: URI as Contact, and goes to the first SIP server of
//     the presentity's domain that answers (Resolver, RFC 3263).
//   - The dialog is made by the 2xx or by a NOTIFY that comes first
//     (RFC 6665 §4.1.2.4): remote tag, remote target (Contact, refreshed
//     by each NOTIFY and 2xx) and route set (Record-Route) are kept; CSeq
//     grows by one per request. NOTIFYs are matched by Call-ID and our
//     tag, answered 200, and handed to OnNotify; others get 481.
//   - Refresh in the dialog at 80% of the granted duration or 30 s before
//     it ends, whichever is earlier (the latter only for durations over
//     a minute; at least a second), minus up to 10% jitter; the granted duration is the 2xx's Expires or a NOTIFY's
//     expires=. 423 is retried once with Min-Expires.
//   - Re-establishment with a new dialog (new Call-ID and tag): at once
//     after a refresh answered 481, 408, not at all or with any other
//     failure but 403, 489 and 603, or a NOTIFY
//     "terminated" with reason deactivated or timeout; after retry-after
//     (else RetryMin) for probation and giveup, and after RetryMin for no
//     or an unknown reason (RFC 6665 §4.1.3). Failed attempts back off
//     exponentially from RetryMin to RetryMax, with jitter.
//   - Permanent ends: reason rejected, noresource or invariant, or a
//     final status RFC 8048 calls permanent (403, 489, 603 and the like,
//     see permanentStatus). OnNotify then gets a last Notification with
//     Final set, and nothing is retried.
//
// Not done: several dialogs from a forked SUBSCRIBE (the first remote tag
// wins, the others get 481), strict routers in the route set (Route
// entries without ;lr), digest challenges from the peer (401/407 are
// permanent), persistence (the session package re-subscribes after our
// own restart).

// SubscribeRequest says what to subscribe to and where to report.
type SubscribeRequest struct {
	// Watcher is the local user on whose behalf we subscribe (a user of
	// one of our domains); Presentity is who is watched.
	Watcher, Presentity addressing.Address
	// Event is the event package; default "presence".
	Event string
	// Accept are the body types asked for; default application/pidf+xml
	// and application/cpim-pidf+xml.
	Accept []string
	// Expires is the duration asked for; default one hour.
	Expires time.Duration
	// Resolver finds the presentity domain's SIP servers; default
	// Options.Resolver.
	Resolver Resolver
	// RetryMin and RetryMax bound the backoff between failed attempts to
	// re-establish the subscription; defaults 5 s and 5 minutes.
	RetryMin, RetryMax time.Duration
	// SIPURIs names watcher and presentity by sip: URIs instead of the
	// draft's pres: URIs, for SIMPLE-only peers (RFC 3856 servers such as
	// Kamailio refuse pres: Request-URIs).
	SIPURIs bool
	// OnNotify receives every NOTIFY of the subscription, in order and
	// never concurrently, after it was answered 200. It must not block
	// for long. The last call has Final set.
	OnNotify func(Notification)
}

// Notification is one NOTIFY received, or the end of a subscription.
type Notification struct {
	Watcher, Presentity addressing.Address
	// CallID identifies the dialog; it changes when the subscription is
	// re-established.
	CallID string
	// State is the Subscription-State header (for a synthesized end:
	// terminated with the reason that ended it).
	State SubState
	// ContentType is the body's media type (without parameters), e.g.
	// application/pidf+xml; Body is the body as received (parse it with
	// package pidf).
	ContentType string
	Body        []byte
	// Final is set on the last Notification of the subscription: no
	// NOTIFY follows and nothing is retried.
	Final bool
	// Status is the SIP status that ended the subscription when no
	// NOTIFY said so (a final response to SUBSCRIBE); else 0.
	Status int
}

// Subscription is an outgoing subscription kept alive by the server.
type Subscription struct {
	s      *Server
	req    SubscribeRequest
	ctx    context.Context // ends at Unsubscribe or shutdown
	cancel context.CancelCauseFunc
	done   chan struct{}
	events chan subEvent

	deliverMu sync.Mutex // serializes OnNotify

	mu         sync.Mutex
	key        string // in the server's table (guarded by its mutex); "" when none
	callID     string
	localTag   string
	remoteTag  string
	localURI   sip.Uri
	remoteURI  sip.Uri
	target     sip.Uri
	routes     []sip.Uri
	cseq       uint32
	remoteCSeq uint32
	transport  string
	dest       string // where the initial request went, host:port
	dialog     bool   // a 2xx or NOTIFY made the dialog
	expires    time.Duration
	stopCtx    context.Context
	terminated chan struct{} // closed by a NOTIFY "terminated"
	finished   bool          // the Final notification was delivered
}

// subEvent is what a NOTIFY tells the subscription's goroutine.
type subEvent struct {
	callID  string
	kind    int
	delay   time.Duration // evReestablish
	expires time.Duration // evExpires
}

const (
	evReestablish = iota + 1
	evFinal
	evExpires
)

var (
	errUnsubscribed = errors.New("unsubscribed")
	errShutdown     = errors.New("server shutting down")
)

// subscriberTable holds the outgoing subscriptions of a Server by
// Call-ID and local tag.
type subscriberTable struct {
	mu     sync.Mutex
	byKey  map[string]*Subscription
	all    map[*Subscription]bool
	closed bool
	wg     sync.WaitGroup
}

func (t *subscriberTable) add(sub *Subscription) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.all == nil {
		t.all = make(map[*Subscription]bool)
		t.byKey = make(map[string]*Subscription)
	}
	t.all[sub] = true
	t.wg.Add(1)
	return true
}

func (t *subscriberTable) remove(sub *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.all, sub)
	if sub.key != "" && t.byKey[sub.key] == sub {
		delete(t.byKey, sub.key)
	}
	sub.key = ""
}

func (t *subscriberTable) rekey(sub *Subscription, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := sub.key; old != "" && t.byKey[old] == sub {
		delete(t.byKey, old)
	}
	sub.key = key
	if key != "" && t.all[sub] {
		t.byKey[key] = sub
	}
}

// unkey removes sub's entry when it is still key.
func (t *subscriberTable) unkey(sub *Subscription, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sub.key == key {
		delete(t.byKey, key)
		sub.key = ""
	}
}

func (t *subscriberTable) get(callID, localTag string) *Subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[callID+"\x00"+localTag]
}

func (t *subscriberTable) close() []*Subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	out := make([]*Subscription, 0, len(t.all))
	for sub := range t.all {
		out = append(out, sub)
	}
	return out
}

// Subscriptions returns the number of outgoing subscriptions.
func (s *Server) Subscriptions() int {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	return len(s.subs.all)
}

// Subscribe sends the initial SUBSCRIBE for req and keeps the
// subscription alive until Unsubscribe or the end of Serve. ctx bounds
// the initial request only. It returns an error (wrapping a *StatusError
// when there was an answer) if the request is unusable or the first
// attempt fails permanently; after a transient failure (no answer, 408,
// 481, 5xx) it returns the Subscription, which retries in the
// background.
func (s *Server) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	if s.client == nil {
		return nil, errors.New("sipside: subscribe: not listening")
	}
	if !s.domains[req.Watcher.Domain] {
		return nil, fmt.Errorf("sipside: subscribe: %s is not a user of ours", req.Watcher.BareJID())
	}
	if req.Presentity.Local == "" || req.Presentity.Domain == "" {
		return nil, errors.New("sipside: subscribe: no presentity")
	}
	if req.Event == "" {
		req.Event = "presence"
	}
	if len(req.Accept) == 0 {
		req.Accept = []string{pidf.ContentTypePIDF, pidf.ContentTypeCPIM}
	}
	if req.Expires <= 0 {
		req.Expires = time.Hour
	}
	if req.Resolver == nil {
		req.Resolver = s.opts.Resolver
	}
	if req.Resolver == nil {
		return nil, errors.New("sipside: subscribe: no resolver")
	}
	if req.RetryMin <= 0 {
		req.RetryMin = 5 * time.Second
	}
	if req.RetryMax < req.RetryMin {
		req.RetryMax = max(5*time.Minute, req.RetryMin)
	}
	var localURI, remoteURI sip.Uri
	watcherURI, presentityURI := req.Watcher.Bare().Pres(), req.Presentity.Bare().Pres()
	if req.SIPURIs {
		watcherURI, presentityURI = req.Watcher.Bare().SIP(), req.Presentity.Bare().SIP()
	}
	if err := sip.ParseUri(watcherURI, &localURI); err != nil {
		return nil, fmt.Errorf("sipside: subscribe: watcher uri: %w", err)
	}
	if err := sip.ParseUri(presentityURI, &remoteURI); err != nil {
		return nil, fmt.Errorf("sipside: subscribe: presentity uri: %w", err)
	}
	sub := &Subscription{
		s: s, req: req, done: make(chan struct{}), events: make(chan subEvent, 8),
		localURI: localURI, remoteURI: remoteURI, expires: req.Expires,
	}
	sub.ctx, sub.cancel = context.WithCancelCause(context.Background())
	if !s.subs.add(sub) {
		sub.cancel(errShutdown)
		return nil, fmt.Errorf("sipside: subscribe %s: %w", req.Presentity.BareJID(), errShutdown)
	}
	first, cancel := context.WithCancel(sub.ctx)
	stop := context.AfterFunc(ctx, cancel)
	o := sub.establish(first)
	stop()
	cancel()
	if !o.ok() && (o.permanent() || ctx.Err() != nil || sub.ctx.Err() != nil) {
		sub.cancel(errUnsubscribed)
		s.subs.remove(sub)
		s.subs.wg.Done()
		close(sub.done)
		err := o.err
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = context.Cause(sub.ctx)
		}
		return nil, fmt.Errorf("sipside: subscribe %s: %w", req.Presentity.BareJID(), err)
	}
	go sub.run(o)
	return sub, nil
}

// CallID returns the Call-ID of the current dialog.
func (sub *Subscription) CallID() string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.callID
}

// Unsubscribe ends the subscription: SUBSCRIBE with Expires: 0 in the
// dialog, then it waits (bounded by ctx) for the NOTIFY "terminated",
// which OnNotify gets as the Final notification (one is made up when
// none comes).
func (sub *Subscription) Unsubscribe(ctx context.Context) error {
	sub.stopWith(ctx, errUnsubscribed)
	select {
	case <-sub.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sipside: unsubscribe %s: %w", sub.req.Presentity.BareJID(), ctx.Err())
	}
}

func (sub *Subscription) stopWith(ctx context.Context, cause error) {
	sub.mu.Lock()
	if sub.stopCtx == nil {
		sub.stopCtx = ctx
	}
	sub.mu.Unlock()
	sub.cancel(cause)
}

// unsubscribeAll ends every outgoing subscription at shutdown, in
// parallel, bounded by two seconds in all.
func (s *Server) unsubscribeAll() {
	subs := s.subs.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, sub := range subs {
		sub.stopWith(ctx, errShutdown)
	}
	s.subs.wg.Wait()
}

// outcome is the result of one SUBSCRIBE transaction.
type outcome struct {
	granted  time.Duration
	status   int
	reason   string
	err      error
	inDialog bool
}

func (o outcome) ok() bool { return o.err == nil }

func (o outcome) permanent() bool {
	if o.err == nil {
		return false
	}
	if o.inDialog {
		// RFC 6665 §4.1.2.2: a failed refresh leaves the subscription
		// as it was; only an explicit refusal (RFC 8048 §5) ends it,
		// anything else is retried with a new dialog.
		return o.status == 403 || o.status == 489 || o.status == 603
	}
	return permanentStatus(o.status)
}

// permanentStatus reports whether a final status to SUBSCRIBE means the
// subscription must not be retried (RFC 8048 §5: 403, 489, 603 are
// permanent; 423, 481 transient). Authentication challenges are
// permanent: peers do not challenge each other's servers.
func permanentStatus(code int) bool {
	switch code {
	case 400, 401, 403, 404, 405, 406, 407, 410, 414, 415, 416, 420, 484, 485, 488, 489:
		return true
	}
	return code >= 600
}

// reasonForStatus is the termination reason reported for a permanent
// status.
func reasonForStatus(code int) string {
	switch code {
	case 404, 410, 484, 604:
		return ReasonNoResource
	}
	return ReasonRejected
}

// establish starts a new dialog with an initial SUBSCRIBE, trying the
// domain's servers in order until one answers.
func (sub *Subscription) establish(ctx context.Context) outcome {
	s := sub.s
	sub.mu.Lock()
	sub.callID = newTag() + newTag() + "@" + s.sdpHost(sub.req.Watcher.Domain)
	sub.localTag = newTag()
	sub.remoteTag = ""
	sub.target = sub.remoteURI
	sub.routes = nil
	sub.cseq = rand.Uint32N(1<<15) + 1
	sub.remoteCSeq = 0
	sub.dialog = false
	sub.terminated = make(chan struct{})
	key := sub.callID + "\x00" + sub.localTag
	sub.mu.Unlock()
	s.subs.rekey(sub, key)

	targets, err := sub.req.Resolver.ResolveSIP(ctx, sub.req.Presentity.Domain)
	if err != nil {
		return outcome{err: fmt.Errorf("resolve %s: %w", sub.req.Presentity.Domain, err)}
	}
	o := outcome{err: fmt.Errorf("no SIP server for %s", sub.req.Presentity.Domain)}
	for _, t := range targets {
		if t.Protocol != "" && t.Protocol != addressing.ProtocolSIP {
			continue
		}
		tp := strings.ToLower(t.Transport)
		if tp == "" {
			tp = "udp"
		}
		sub.mu.Lock()
		sub.transport, sub.dest = tp, net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
		sub.mu.Unlock()
		o = sub.transact(ctx, sub.expiresNow(), false)
		if o.status != 0 || ctx.Err() != nil {
			break // an answer: do not try other servers
		}
		s.log.Debug("subscribe target failed", "target", t.String(), "error", o.err)
	}
	return o
}

func (sub *Subscription) expiresNow() time.Duration {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.expires
}

// transact sends one SUBSCRIBE (in the dialog when inDialog) and reads
// its final answer; 423 is retried once with Min-Expires.
func (sub *Subscription) transact(ctx context.Context, expires time.Duration, inDialog bool) outcome {
	for attempt := 0; ; attempt++ {
		res, err := sub.send(ctx, expires)
		if err != nil {
			return outcome{err: err, inDialog: inDialog}
		}
		if res.StatusCode == 423 && attempt == 0 && expires > 0 {
			if h := res.GetHeader("Min-Expires"); h != nil {
				if n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err == nil && time.Duration(n)*time.Second > expires {
					expires = time.Duration(n) * time.Second
					sub.mu.Lock()
					sub.expires = expires
					sub.mu.Unlock()
					continue
				}
			}
		}
		if !res.IsSuccess() {
			return outcome{status: res.StatusCode, reason: res.Reason, inDialog: inDialog,
				err: &StatusError{Code: res.StatusCode, Reason: res.Reason}}
		}
		granted := expires
		if h := res.GetHeader("Expires"); h != nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err == nil {
				granted = time.Duration(n) * time.Second
			}
		}
		sub.accepted(res, inDialog)
		return outcome{granted: granted, status: res.StatusCode, inDialog: inDialog}
	}
}

// accepted takes the dialog state from a 2xx (RFC 3261 §12.1.2).
func (sub *Subscription) accepted(res *sip.Response, inDialog bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !inDialog {
		sub.s.countSubscription(directionOut)
		if tag, ok := res.To().Params.Get("tag"); ok {
			sub.remoteTag = tag
		}
		sub.routes = recordRoutes(res.GetHeaders("Record-Route"), true)
		sub.dialog = true
	}
	if c := res.Contact(); c != nil {
		sub.target = c.Address
	}
}

// recordRoutes reads Record-Route values in order, or reversed (a UAC
// reads them from a 2xx in reverse, RFC 3261 §12.1.2).
func recordRoutes(hs []sip.Header, reverse bool) []sip.Uri {
	var out []sip.Uri
	for _, h := range hs {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			out = append(out, rr.Address)
			continue
		}
		for _, v := range splitComma(h.Value()) {
			v = strings.TrimSpace(v)
			v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
			var u sip.Uri
			if err := sip.ParseUri(v, &u); err == nil {
				out = append(out, u)
			}
		}
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// send builds the next SUBSCRIBE of the dialog and waits for its final
// answer, bounded by ForwardTimeout.
func (sub *Subscription) send(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	s := sub.s
	sub.mu.Lock()
	sub.cseq++
	req := sip.NewRequest(sip.SUBSCRIBE, sub.target)
	for _, r := range sub.routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	from := &sip.FromHeader{Address: sub.localURI, Params: sip.NewParams()}
	from.Params.Add("tag", sub.localTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sub.remoteURI, Params: sip.NewParams()}
	if sub.dialog && sub.remoteTag != "" {
		to.Params.Add("tag", sub.remoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq, MethodName: sip.SUBSCRIBE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	transport, dest, inDialog := sub.transport, sub.dest, sub.dialog
	next := req.Recipient
	if len(sub.routes) > 0 {
		next = sub.routes[0]
	}
	callID := sub.callID
	sub.mu.Unlock()

	req.AppendHeader(&sip.ContactHeader{Address: s.localContact(sub.req.Watcher, transport)})
	req.AppendHeader(sip.NewHeader("Event", sub.req.Event))
	req.AppendHeader(sip.NewHeader("Accept", strings.Join(sub.req.Accept, ", ")))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	req.AppendHeader(sip.NewHeader("Allow", allowedWithInvite))
	req.AppendHeader(sip.NewHeader("User-Agent", s.opts.UserAgent))
	req.SetBody(nil)

	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	if inDialog {
		hop := sip.NewRequest(sip.SUBSCRIBE, next)
		s.route(ctx, hop, transport, dest)
		req.SetTransport(hop.Transport())
		req.SetDestination(hop.Destination())
	} else {
		req.SetTransport(strings.ToUpper(transport))
		req.SetDestination(dest)
	}
	res, err := s.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s via %s: %w", callID, req.Destination(), err)
	}
	if res == nil {
		return nil, fmt.Errorf("subscribe %s via %s: transaction ended without an answer", callID, req.Destination())
	}
	return res, nil
}

// refreshDelay is when to refresh a subscription granted for d.
func refreshDelay(d time.Duration) time.Duration {
	r := d * 8 / 10
	if d-30*time.Second > d/2 {
		r = min(r, d-30*time.Second)
	}
	r = max(r, time.Second)
	if j := int64(r / 10); j > 0 {
		r -= time.Duration(rand.Int64N(j))
	}
	return r
}

// jitter returns d less up to a quarter.
func jitter(d time.Duration) time.Duration {
	if j := int64(d / 4); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return d
}

const (
	actRefresh = iota + 1
	actEstablish
)

// run keeps the subscription alive: it refreshes, re-establishes, and
// ends it at Unsubscribe or shutdown.
func (sub *Subscription) run(first outcome) {
	s := sub.s
	defer s.subs.wg.Done()
	defer close(sub.done)
	defer s.subs.remove(sub)
	defer sub.cancel(errUnsubscribed) // no-op when already stopped
	retry := sub.req.RetryMin
	action, at, stop := sub.plan(first, &retry)
	for !stop {
		t := time.NewTimer(time.Until(at))
		select {
		case <-sub.ctx.Done():
			t.Stop()
			sub.end()
			return
		case ev := <-sub.events:
			t.Stop()
			if ev.callID != sub.CallID() {
				continue // about a dialog already replaced
			}
			switch ev.kind {
			case evFinal:
				return
			case evReestablish:
				action, at = actEstablish, time.Now().Add(ev.delay)
			case evExpires:
				if action == actRefresh {
					at = time.Now().Add(refreshDelay(ev.expires))
				}
			}
			continue
		case <-t.C:
		}
		var o outcome
		if action == actRefresh {
			o = sub.transact(sub.ctx, sub.expiresNow(), true)
		} else {
			o = sub.establish(sub.ctx)
		}
		if sub.ctx.Err() != nil {
			sub.end()
			return
		}
		action, at, stop = sub.plan(o, &retry)
	}
}

// plan decides what follows an outcome.
func (sub *Subscription) plan(o outcome, retry *time.Duration) (action int, at time.Time, stop bool) {
	now := time.Now()
	switch {
	case o.ok():
		*retry = sub.req.RetryMin
		return actRefresh, now.Add(refreshDelay(o.granted)), false
	case o.permanent():
		sub.s.log.Debug("subscription rejected", "call_id", sub.CallID(), "user", sub.req.Watcher.BareJID(),
			"presentity", sub.req.Presentity.BareJID(), "status", o.status)
		sub.finish(StateTerminated, reasonForStatus(o.status), o.status)
		return 0, now, true
	case o.inDialog:
		// A refresh failed (481, 408, no answer, ...): the peer lost the
		// dialog, say after a restart. Start over at once.
		sub.s.log.Debug("subscription refresh failed", "call_id", sub.CallID(), "status", o.status, "error", o.err)
		return actEstablish, now, false
	default:
		d := jitter(*retry)
		*retry = min(*retry*2, sub.req.RetryMax)
		sub.s.log.Debug("subscription attempt failed", "presentity", sub.req.Presentity.BareJID(), "retry_in", d, "status", o.status, "error", o.err)
		return actEstablish, now.Add(d), false
	}
}

// end unsubscribes (Expires: 0) when a dialog exists, waits for the
// NOTIFY "terminated" (bounded by the stop context), and delivers the
// Final notification when that NOTIFY did not.
func (sub *Subscription) end() {
	s := sub.s
	sub.mu.Lock()
	ctx, dialog, terminated := sub.stopCtx, sub.dialog, sub.terminated
	sub.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	reason := ""
	if errors.Is(context.Cause(sub.ctx), errShutdown) {
		reason = ReasonDeactivated
	}
	if dialog {
		o := sub.transact(ctx, 0, true)
		if o.ok() {
			select {
			case <-terminated:
			case <-ctx.Done():
			}
		} else {
			s.log.Debug("unsubscribe failed", "call_id", sub.CallID(), "status", o.status, "error", o.err)
		}
	}
	sub.finish(StateTerminated, reason, 0)
}

// finish delivers a made-up Final notification unless one was delivered.
func (sub *Subscription) finish(state, reason string, status int) {
	sub.deliver(Notification{State: SubState{State: state, Reason: reason}, Final: true, Status: status})
}

// deliver hands n to OnNotify, once a Final one was delivered never
// again.
func (sub *Subscription) deliver(n Notification) {
	sub.deliverMu.Lock()
	defer sub.deliverMu.Unlock()
	sub.mu.Lock()
	if sub.finished {
		sub.mu.Unlock()
		return
	}
	if n.Final {
		sub.finished = true
	}
	if n.CallID == "" {
		n.CallID = sub.callID
	}
	sub.mu.Unlock()
	n.Watcher, n.Presentity = sub.req.Watcher, sub.req.Presentity
	if sub.req.OnNotify != nil {
		sub.req.OnNotify(n)
	}
}

// signal passes ev to the subscription's goroutine unless it has ended.
func (sub *Subscription) signal(ev subEvent) {
	select {
	case sub.events <- ev:
	case <-sub.done:
	case <-sub.ctx.Done():
	}
}

// handleNotify answers a NOTIFY in one of our subscription dialogs
// (RFC 6665 §4.1.3) and hands it on.
func (s *Server) handleNotify(req *sip.Request, tx sip.ServerTransaction) {
	localTag, _ := req.To().Params.Get("tag")
	remoteTag, _ := req.From().Params.Get("tag")
	cid := callID(req)
	sub := s.subs.get(cid, localTag)
	if sub == nil || localTag == "" || remoteTag == "" {
		s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	// RFC 6665 §8.2.1 requires Event; the draft's §4.2 NOTIFYs omit it,
	// so only another package is refused.
	if ev := req.GetHeader("Event"); ev != nil && !eventMatches(ev.Value(), sub.req.Event) {
		s.reply(req, tx, 489, "Bad Event", sip.NewHeader("Allow-Events", sub.req.Event))
		return
	}
	h := req.GetHeader("Subscription-State")
	if h == nil {
		s.reply(req, tx, 400, "Bad Request - Missing Subscription-State")
		return
	}
	st, err := ParseSubState(h.Value())
	if err != nil {
		s.reply(req, tx, 400, "Bad Request - Subscription-State")
		return
	}
	seq := req.CSeq().SeqNo
	sub.mu.Lock()
	if sub.remoteTag != "" && sub.dialog && remoteTag != sub.remoteTag {
		sub.mu.Unlock()
		s.reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if sub.dialog && sub.remoteCSeq != 0 && seq <= sub.remoteCSeq {
		sub.mu.Unlock()
		s.reply(req, tx, 500, "Server Internal Error - CSeq out of order")
		return
	}
	if !sub.dialog {
		// The NOTIFY makes the dialog (RFC 6665 §4.1.2.4): route set
		// from its Record-Route, in order (RFC 3261 §12.1.1).
		sub.remoteTag = remoteTag
		sub.routes = recordRoutes(req.GetHeaders("Record-Route"), false)
		sub.dialog = true
	}
	sub.remoteCSeq = seq
	if c := req.Contact(); c != nil {
		sub.target = c.Address
	}
	ending := sub.stopCtx != nil
	terminated := sub.terminated
	if st.State == StateTerminated {
		sub.dialog = false // the dialog is over
	}
	sub.mu.Unlock()
	s.reply(req, tx, 200, "OK")

	n := Notification{CallID: cid, State: st, Body: req.Body()}
	if ct := req.ContentType(); ct != nil {
		n.ContentType = mediaType(ct.Value())
	}
	var ev *subEvent
	if st.State == StateTerminated {
		switch {
		case ending:
			n.Final = true
		case st.Reason == ReasonDeactivated || st.Reason == ReasonTimeout:
			ev = &subEvent{kind: evReestablish}
		case st.Reason == ReasonProbation || st.Reason == ReasonGiveUp:
			d := sub.req.RetryMin
			if st.HasRetry {
				d = st.RetryAfter
			}
			ev = &subEvent{kind: evReestablish, delay: d}
		case st.Reason == ReasonRejected || st.Reason == ReasonNoResource || st.Reason == ReasonInvariant:
			n.Final = true
			ev = &subEvent{kind: evFinal}
		default:
			ev = &subEvent{kind: evReestablish, delay: jitter(sub.req.RetryMin)}
		}
		s.subs.unkey(sub, cid+"\x00"+localTag) // later NOTIFYs in it get 481
	} else if st.Expires > 0 {
		ev = &subEvent{kind: evExpires, expires: st.Expires}
	}
	s.log.Debug("notify received", "call_id", cid, "user", sub.req.Watcher.BareJID(),
		"presentity", sub.req.Presentity.BareJID(), "state", st.String())
	sub.deliver(n)
	if st.State == StateTerminated {
		// After the delivery, so that an Unsubscribe waiting for this
		// NOTIFY does not make up its own Final notification first.
		sub.mu.Lock()
		select {
		case <-terminated:
		default:
			close(terminated)
		}
		sub.mu.Unlock()
	}
	if ev != nil {
		ev.callID = cid
		sub.signal(*ev)
	}
}

// eventMatches compares an Event header value with a package name
// (RFC 6665 §8.2.1: the package, parameters apart from id ignored).
func eventMatches(v, pkg string) bool {
	name, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(name), pkg)
}
