package xmppside

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sinkConn is a net.Conn whose writes are counted and dropped; reads
// block until Close.
type sinkConn struct {
	n      atomic.Int64
	closed chan struct{}
}

func newSinkConn() *sinkConn { return &sinkConn{closed: make(chan struct{})} }

func (s *sinkConn) Write(p []byte) (int, error) { s.n.Add(int64(len(p))); return len(p), nil }
func (s *sinkConn) Read([]byte) (int, error)    { <-s.closed; return 0, io.EOF }
func (s *sinkConn) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}
func (s *sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (s *sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (s *sinkConn) SetDeadline(time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }

// repeatReader yields head once, then msg n times.
type repeatReader struct {
	head, msg []byte
	n         int
	cur       []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.head != nil {
			r.cur, r.head = r.head, nil
			continue
		}
		if r.n == 0 {
			return 0, io.EOF
		}
		r.n--
		r.cur = r.msg
	}
	k := copy(p, r.cur)
	r.cur = r.cur[k:]
	return k, nil
}

// benchSession makes a bound session writing to a sink, as bind does.
func benchSession(s *Server, full string) (*conn, *sinkConn) {
	sink := newSinkConn()
	c := s.newConn(sink)
	c.user, _ = parseAddr(full)
	c.domain = c.user.domain
	c.w = bufio.NewWriterSize(sink, 4096)
	c.out = make(chan outItem, s.opts.QueueLen)
	c.writing.Store(true)
	go c.writeLoop()
	c.avail.Store(true)
	s.loc.Register(c)
	return c, sink
}

const benchMsg = "<message to='%s' type='chat' id='bench-1'><body>Wherefore art thou, Romeo?</body><thread>t-1</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>"

// BenchmarkRouter measures stanzas routed per second between two local
// sessions in one process: the sender's reader parses the XML stream,
// stamps from, finds the recipient and queues the bytes; the recipient's
// writer writes them (to a counting sink instead of a socket).
func BenchmarkRouter(b *testing.B) {
	for _, to := range []string{"bob@example.test/b", "bob@example.test"} {
		b.Run("to="+to, func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.Logger = nil })
			e.addUser("bob", "pw")
			s := e.srv
			recv, sink := benchSession(s, "bob@example.test/b")
			defer recv.closeStream("")
			sender, _ := benchSession(s, "alice@example.test/a")
			defer sender.closeStream("")
			msg := []byte(strings.Replace(benchMsg, "%s", to, 1))

			// Size of one delivered stanza.
			probe := newStreamReader(strings.NewReader(string(msg)), 0)
			var el element
			if err := probe.next(&el); err != nil {
				b.Fatal(err)
			}
			one := int64(len(appendStamped(nil, &el, sender.user.full, "", "")))

			sender.sr = newStreamReader(&repeatReader{head: []byte(clientHeader), msg: msg, n: b.N}, 64<<10)
			if _, err := sender.sr.readHeader(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := sender.run(context.Background()); err != errStreamEnd && err != io.EOF && err != io.ErrUnexpectedEOF {
				b.Fatalf("run: %v", err)
			}
			for sink.n.Load() < one*int64(b.N) {
				time.Sleep(50 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkRouterTLS measures end to end: two real clients on loopback
// TLS, one writing chat messages as fast as it can, the other reading
// them.
func BenchmarkRouterTLS(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.Logger = nil })
	e.addUser("alice", "pw")
	e.addUser("bob", "pw")
	alice := e.rawSession("alice", "pw", "a")
	bob := e.rawSession("bob", "pw", "b")
	msg := strings.Replace(benchMsg, "%s", "bob@example.test/b", 1)
	done := make(chan int64)
	marker := []byte("</message>")
	go func() {
		buf := make([]byte, 64<<10)
		var seen int64
		var carry []byte
		_ = bob.nc.SetReadDeadline(time.Time{})
		for seen < int64(b.N) {
			n, err := bob.nc.Read(buf)
			if err != nil {
				break
			}
			data := append(carry, buf[:n]...)
			seen += int64(strings.Count(string(data), string(marker)))
			if i := strings.LastIndex(string(data), string(marker)); i >= 0 {
				data = data[i+len(marker):]
			}
			if len(data) > len(marker) {
				data = data[len(data)-len(marker):]
			}
			carry = append(carry[:0], data...)
		}
		done <- seen
	}()
	batch := strings.Repeat(msg, 64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		k := min(64, b.N-sent)
		if err := alice.write(batch[:k*len(msg)]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	if seen := <-done; seen < int64(b.N) {
		b.Fatalf("received %d of %d", seen, b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
