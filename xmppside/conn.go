package xmppside

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Errors returned by Endpoint.Deliver.
var (
	ErrQueueFull = errors.New("xmppside: recipient queue full")
	ErrGone      = errors.New("xmppside: recipient disconnected")
)

// outItem is one entry of a session's outbound queue.
type outItem struct {
	buf  *[]byte
	done func() // called after buf was written and flushed (nil: none)
}

// conn is one client connection. The goroutine running serve reads and
// routes; after resource binding a second goroutine (writeLoop) owns all
// writes.
type conn struct {
	srv    *Server
	log    *slog.Logger
	nc     net.Conn // current transport (TLS once negotiated)
	raw    net.Conn // the TCP connection
	ip     string
	sr     *streamReader
	w      *bufio.Writer
	secure bool

	domain     string // stream 'to'
	peerFrom   string // stream 'from' of the client, echoed as our 'to'
	lang       string // stream xml:lang
	headerSent bool
	user       addr // bare after SASL, full after bind

	// After binding.
	out      chan outItem
	kill     chan string
	done     chan struct{} // closed when writeLoop returns
	writing  atomic.Bool   // writeLoop started
	killCond atomic.Value  // string: condition requested by closeStream
	prio     atomic.Int32
	avail    atomic.Bool
	rosterOn atomic.Bool // requested the roster: gets roster pushes
	last     atomic.Pointer[[]byte]

	// Reader-goroutine state.
	scratch  []byte
	eps      []Endpoint
	directed map[string]bool // full JIDs that got directed presence
}

func (s *Server) newConn(nc net.Conn) *conn {
	ip, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		ip = nc.RemoteAddr().String()
	}
	return &conn{
		srv:  s,
		log:  s.log.With("addr", nc.RemoteAddr().String()),
		nc:   nc,
		raw:  nc,
		ip:   ip,
		kill: make(chan string, 1),
		done: make(chan struct{}),
	}
}

// closeStream ends the stream with a stream error (empty: a plain close).
// Safe from any goroutine, any number of times.
func (c *conn) closeStream(cond string) {
	c.killCond.CompareAndSwap(nil, cond)
	if c.writing.Load() {
		select {
		case c.kill <- cond:
		default:
		}
		return
	}
	// Still negotiating: wake the reader, which writes the error itself.
	_ = c.raw.SetReadDeadline(time.Unix(1, 0))
}

// JID implements Endpoint.
func (c *conn) JID() string { return c.user.full }

// Presence implements Endpoint.
func (c *conn) Presence() (int, bool) { return int(c.prio.Load()), c.avail.Load() }

// LastPresence implements Endpoint.
func (c *conn) LastPresence() []byte {
	if p := c.last.Load(); p != nil {
		return *p
	}
	return nil
}

// Close implements Endpoint.
func (c *conn) Close(cond string) { c.closeStream(cond) }

// Deliver implements Endpoint.
func (c *conn) Deliver(ctx context.Context, raw []byte) error {
	b := c.srv.pool.get()
	*b = append(*b, raw...)
	return c.enqueue(ctx, outItem{buf: b})
}

func (c *conn) enqueue(ctx context.Context, it outItem) error {
	select {
	case c.out <- it:
		return nil
	case <-c.done:
		c.srv.pool.put(it.buf)
		return ErrGone
	default:
	}
	t := time.NewTimer(c.srv.opts.SendTimeout)
	defer t.Stop()
	select {
	case c.out <- it:
		return nil
	case <-c.done:
		c.srv.pool.put(it.buf)
		return ErrGone
	case <-t.C:
		c.srv.pool.put(it.buf)
		return ErrQueueFull
	case <-ctx.Done():
		c.srv.pool.put(it.buf)
		return ctx.Err()
	}
}

// send queues bytes for this client itself (replies, errors). It waits as
// long as the writer is alive: a client that does not read stalls only
// itself, and the write timeout ends it.
func (c *conn) send(b []byte) {
	buf := c.srv.pool.get()
	*buf = append(*buf, b...)
	select {
	case c.out <- outItem{buf: buf}:
	case <-c.done:
		c.srv.pool.put(buf)
	}
}

// writeSync writes during negotiation, before writeLoop exists.
func (c *conn) writeSync(s string) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	if _, err := c.w.WriteString(s); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (c *conn) streamHeader() string {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	h := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + nsStream + "' id='" + hex.EncodeToString(id) + "' version='1.0' xml:lang='en'"
	if c.domain != "" {
		h += " from='" + string(appendAttrValue(nil, c.domain)) + "'"
	}
	if c.peerFrom != "" {
		h += " to='" + string(appendAttrValue(nil, c.peerFrom)) + "'"
	}
	return h + ">"
}

func streamErrorXML(cond string) string {
	if cond == "" {
		return "</stream:stream>"
	}
	return "<stream:error><" + cond + " xmlns='" + nsStreams + "'/></stream:error></stream:stream>"
}

// serve runs the connection: negotiation, then the stanza loop.
func (c *conn) serve(ctx context.Context, direct bool) {
	c.log.Debug("connected")
	c.w = bufio.NewWriterSize(c.nc, 4096)
	c.sr = newStreamReader(c.nc, c.srv.opts.MaxStanzaBytes)
	_ = c.raw.SetDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))

	err := c.negotiate(ctx, direct)
	if err == nil {
		_ = c.raw.SetDeadline(time.Time{})
		err = c.run(ctx)
	}
	c.finish(ctx, err)
}

// finish ends the stream after err and releases everything.
func (c *conn) finish(ctx context.Context, err error) {
	cond := ""
	var se *streamError
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, errStreamEnd):
	case errors.Is(err, errPeerGone):
		cond = "-"
	case errors.As(err, &se):
		cond = se.cond
	case errors.As(err, &ne) && ne.Timeout():
		if k, ok := c.killCond.Load().(string); ok {
			cond = k
		} else {
			cond = "connection-timeout"
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		cond = "-" // peer is gone: nothing to write
	default:
		if k, ok := c.killCond.Load().(string); ok {
			cond = k
		} else {
			cond = "internal-server-error"
		}
	}
	if cond != "" && cond != "-" {
		c.log.Info("stream error", "condition", cond, "err", err)
	}

	if c.writing.Load() {
		select {
		case c.kill <- cond:
		default:
		}
		<-c.done
		c.leave(ctx)
	} else if cond != "-" {
		_ = c.raw.SetWriteDeadline(time.Now().Add(2 * time.Second))
		s := ""
		if !c.headerSent {
			s = c.streamHeader()
		}
		s += streamErrorXML(cond)
		_, _ = c.w.WriteString(s)
		_ = c.w.Flush()
	}
	c.linger()
	_ = c.nc.Close()
	_ = c.raw.Close()
	c.log.Debug("disconnected")
}

// linger half-closes and reads what the peer still sends for a moment, so
// that our last bytes (a stream error) are not lost to a TCP reset.
func (c *conn) linger() {
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = tc.CloseWrite()
	} else if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c.nc, 1<<20)
}

// writeLoop owns the connection's writes after binding.
func (c *conn) writeLoop() {
	defer close(c.done)
	var ticker *time.Ticker
	var tick <-chan time.Time
	if c.srv.opts.KeepAlive > 0 {
		ticker = time.NewTicker(c.srv.opts.KeepAlive)
		defer ticker.Stop()
		tick = ticker.C
	}
	wrote := false
	deadline := func() { _ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout)) }
	fail := func(err error) {
		c.log.Debug("write failed", "err", err)
		_ = c.nc.Close()
	}
	for {
		select {
		case it := <-c.out:
			deadline()
			var err error
			for {
				if _, err = c.w.Write(*it.buf); err != nil {
					break
				}
				c.srv.pool.put(it.buf)
				if it.done != nil {
					if err = c.w.Flush(); err != nil {
						break
					}
					it.done()
				}
				select {
				case it = <-c.out:
					continue
				default:
				}
				break
			}
			if err == nil {
				err = c.w.Flush()
			}
			if err != nil {
				fail(err)
				c.drainQueue()
				return
			}
			wrote = true
		case cond := <-c.kill:
			if cond != "-" {
				deadline()
				_, _ = c.w.WriteString(streamErrorXML(cond))
				_ = c.w.Flush()
			}
			// Wake the reader if it is still blocked on the client.
			_ = c.raw.SetReadDeadline(time.Now().Add(time.Second))
			c.drainQueue()
			return
		case <-tick:
			if !wrote {
				deadline()
				if _, err := c.w.WriteString(" "); err != nil || c.w.Flush() != nil {
					fail(err)
					c.drainQueue()
					return
				}
			}
			wrote = false
		}
	}
}

// drainQueue returns queued buffers to the pool after the writer stopped.
func (c *conn) drainQueue() {
	for {
		select {
		case it := <-c.out:
			c.srv.pool.put(it.buf)
		default:
			return
		}
	}
}

func randomResource() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "umpp-" + hex.EncodeToString(b)
}
