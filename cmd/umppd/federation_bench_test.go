package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Throughput of chat messages through real umppd processes, measured
// from XMPP clients: c2s -> c2s on one server (BenchmarkLocalChat), and
// c2s -> umppd A -> (UMPP session set up over SIP) -> s2s TLS -> umppd B
// -> c2s across two domains (BenchmarkFederationChat).
//
// The clients are raw XMPP streams (STARTTLS, SASL PLAIN, bind) written
// through a buffered writer and read by counting "</message>", so that the
// test process spends little of the machine's CPU next to the daemons.
// The daemons log at info level: nothing on the per-message path.
//
// Each run of a sub-benchmark starts fresh daemons, so that the first
// message of every pair sets up a session (and, across domains, the s2s
// stream). Use a fixed count so the rate is stable and the start-up is
// paid once:
//
//	go test -run '^$' -bench 'FederationChat|LocalChat' -benchtime=200000x ./cmd/umppd
//
// Metrics: msgs/s is b.N over the time from the first send to the last
// message received by all receivers (the setup included); setup-ms and
// setup-max-ms are the mean and the largest first-message latency of the
// pairs, which across domains is the INVITE, its answer and the s2s
// stream; later messages are sent once a pair's first one has arrived.

// benchPairs are the numbers of sender/receiver pairs measured.
var benchPairs = []int{1, 8}

func BenchmarkFederationChat(b *testing.B) {
	for _, p := range benchPairs {
		b.Run("P="+strconv.Itoa(p), func(b *testing.B) {
			montague := newBenchDomain(b, "montague.example.net", "127.0.0.2")
			capulets := newBenchDomain(b, "capulets.example.com", "127.0.0.3")
			startDomains(b, map[*domainServer]map[string]string{
				montague: benchUsers("romeo", p),
				capulets: benchUsers("juliet", p),
			}, montague, capulets)
			pairs := make([]benchPair, p)
			for i := range pairs {
				pairs[i] = benchPair{
					from: rawClientLogin(b, montague.c2sAddr(), montague.domain, fmt.Sprintf("romeo%d", i), "pw", "orchard"),
					to:   rawClientLogin(b, capulets.c2sAddr(), capulets.domain, fmt.Sprintf("juliet%d", i), "pw", "balcony"),
					rcpt: fmt.Sprintf("juliet%d@%s", i, capulets.domain),
				}
			}
			runChatBench(b, pairs)
		})
	}
}

func BenchmarkLocalChat(b *testing.B) {
	for _, p := range benchPairs {
		b.Run("P="+strconv.Itoa(p), func(b *testing.B) {
			montague := newBenchDomain(b, "montague.example.net", "127.0.0.2")
			users := benchUsers("romeo", p)
			maps.Copy(users, benchUsers("benvolio", p))
			startDomains(b, map[*domainServer]map[string]string{montague: users}, montague)
			pairs := make([]benchPair, p)
			for i := range pairs {
				pairs[i] = benchPair{
					from: rawClientLogin(b, montague.c2sAddr(), montague.domain, fmt.Sprintf("romeo%d", i), "pw", "orchard"),
					to:   rawClientLogin(b, montague.c2sAddr(), montague.domain, fmt.Sprintf("benvolio%d", i), "pw", "square"),
					rcpt: fmt.Sprintf("benvolio%d@%s", i, montague.domain),
				}
			}
			runChatBench(b, pairs)
		})
	}
}

// benchUsers names n users with password "pw".
func benchUsers(prefix string, n int) map[string]string {
	u := make(map[string]string, n)
	for i := range n {
		u[prefix+strconv.Itoa(i)] = "pw"
	}
	return u
}

// benchPair is a sender, its receiver's connection, and the bare JID the
// sender writes to.
type benchPair struct {
	from, to net.Conn
	rcpt     string
}

// runChatBench has each pair's sender send its share of b.N chat
// messages to its receiver and reports the rate at which they arrive.
//
// A server that cannot queue a message for long enough bounces it to the
// sender (resource-constraint) rather than holding the sender's stream:
// bounces are counted and reported (bounced), the first one logged, and
// a pair is done when all its messages were received or bounced.
// msgs/s counts the received ones only.
func runChatBench(b *testing.B, pairs []benchPair) {
	p := len(pairs)
	quota := make([]int, p)
	for i := range quota {
		quota[i] = b.N / p
		if i < b.N%p {
			quota[i]++
		}
	}
	var (
		received    = make([]atomic.Int64, p)
		bounced     = make([]atomic.Int64, p)
		setup       = make([]time.Duration, p)
		wg          sync.WaitGroup
		errs        = make(chan error, 2*p)
		bounceOnce  sync.Once
		firstBounce string
	)
	// Each sender's own stream carries the bounces (error messages) the
	// server sends back: count them, so that a loss is told apart from a
	// bounce, and keep the stream drained.
	for i, pr := range pairs {
		go func() {
			_, _ = countTag(pr.from, []byte("<error"), func(int) bool { return false }, time.Hour, &bounced[i], func(chunk []byte) {
				bounceOnce.Do(func() { firstBounce = string(chunk) })
			})
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for i, pr := range pairs {
		if quota[i] == 0 {
			continue
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			done := func(n int) bool { return n+int(bounced[i].Load()) >= quota[i] }
			if _, err := countTag(pr.to, []byte("</message>"), done, 20*time.Second, &received[i], nil); err != nil {
				errs <- fmt.Errorf("%s received %d of %d, %d bounced: %v", pr.rcpt, received[i].Load(), quota[i], bounced[i].Load(), err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := sendChat(pr, quota[i], &received[i], &bounced[i], &setup[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Error(err)
	}
	var got, lost int64
	var sum, worst time.Duration
	n := 0
	for i, d := range setup {
		got += received[i].Load()
		lost += bounced[i].Load()
		if quota[i] > 0 {
			sum += d
			worst = max(worst, d)
			n++
		}
	}
	if lost > 0 {
		b.Logf("%d of %d messages bounced; the first:\n%s", lost, b.N, firstBounce)
	}
	if b.Failed() {
		return
	}
	b.ReportMetric(float64(got)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lost), "bounced")
	b.ReportMetric(float64(sum.Microseconds())/float64(n)/1000, "setup-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "setup-max-ms")
}

// sendChat sends n chat messages to pr.rcpt: the first alone, timing how
// long it takes to arrive (the session setup), then the rest as fast as
// the connection takes them.
func sendChat(pr benchPair, n int, received, bounced *atomic.Int64, setup *time.Duration) error {
	w := bufio.NewWriterSize(pr.from, 64<<10)
	buf := make([]byte, 0, 256)
	msg := func(i int) []byte {
		buf = append(buf[:0], "<message type='chat' to='"...)
		buf = append(buf, pr.rcpt...)
		buf = append(buf, "' id='b"...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "'><body>Wherefore art thou, Romeo? Deny thy father and refuse thy name.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"...)
		return buf
	}
	t0 := time.Now()
	if _, err := pr.from.Write(msg(0)); err != nil {
		return fmt.Errorf("first message to %s: %w", pr.rcpt, err)
	}
	for received.Load() == 0 {
		switch {
		case bounced.Load() > 0:
			return fmt.Errorf("first message to %s bounced", pr.rcpt)
		case time.Since(t0) > 30*time.Second:
			return fmt.Errorf("first message to %s did not arrive in 30s", pr.rcpt)
		}
		time.Sleep(100 * time.Microsecond)
	}
	*setup = time.Since(t0)
	for i := 1; i < n; i++ {
		if _, err := w.Write(msg(i)); err != nil {
			return fmt.Errorf("message %d to %s: %w", i, pr.rcpt, err)
		}
	}
	return w.Flush()
}

// countTag reads conn counting tag until done(count) holds, nothing
// arrives for idle, or the stream fails; it returns the count. counter,
// when set, follows the count as it grows; first, when set, is given the
// data around the first tag.
func countTag(conn net.Conn, tag []byte, done func(int) bool, idle time.Duration, counter *atomic.Int64, first func([]byte)) (int, error) {
	buf := make([]byte, 64<<10)
	keep := len(tag) - 1
	n := 0
	last := time.Now()
	for !done(n) {
		// A short deadline, so that done is asked again while nothing
		// arrives (a bounce elsewhere can complete the count).
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		// buf[:keep] holds the tail of the previous read, so that a tag
		// split across reads is counted; it cannot hold a whole tag.
		k, err := conn.Read(buf[keep:])
		if k > 0 {
			last = time.Now()
			data := buf[:keep+k]
			c := bytes.Count(data, tag)
			if c > 0 {
				if n == 0 && first != nil {
					first(bytes.Clone(data))
				}
				n += c
				if counter != nil {
					counter.Add(int64(c))
				}
			}
			copy(buf, buf[k:keep+k])
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if time.Since(last) > idle {
				return n, fmt.Errorf("nothing for %v: %w", idle, err)
			}
			continue
		}
		if err != nil {
			return n, err
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return n, nil
}

// rawClientLogin logs local@domain in over STARTTLS with SASL PLAIN,
// binds resource, sends initial presence and returns the TLS connection
// once the server has handled it. It is closed at cleanup.
func rawClientLogin(tb testing.TB, addr, domain, local, password, resource string) net.Conn {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "' version='1.0'>"
	var d *xml.Decoder
	var w io.Writer
	write := func(s string) {
		if _, err := io.WriteString(w, s); err != nil {
			tb.Fatalf("%s@%s login: %v", local, domain, err)
		}
	}
	// next returns the next top-level element's name (the stream header
	// when header is set), skipping the element.
	next := func(header bool) string {
		for {
			tok, err := d.Token()
			if err != nil {
				tb.Fatalf("%s@%s login: %v", local, domain, err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				if header {
					return se.Name.Local
				}
				if err := d.Skip(); err != nil {
					tb.Fatalf("%s@%s login: %v", local, domain, err)
				}
				return se.Name.Local
			}
		}
	}
	expect := func(want string) {
		if got := next(false); got != want {
			tb.Fatalf("%s@%s login: got <%s>, want <%s>", local, domain, got, want)
		}
	}
	restart := func(c io.ReadWriter) {
		w, d = c, xml.NewDecoder(bufio.NewReader(c))
		write(hdr)
		if got := next(true); got != "stream" {
			tb.Fatalf("%s@%s login: got <%s>, want the stream header", local, domain, got)
		}
		expect("features")
	}
	restart(nc)
	write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	expect("proceed")
	tc := tls.Client(nc, &tls.Config{ServerName: domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		tb.Fatalf("%s@%s TLS: %v", local, domain, err)
	}
	restart(tc)
	write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+local+"\x00"+password)) + "</auth>")
	expect("success")
	restart(tc)
	write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
	expect("iq")
	// Initial presence, then a ping: the stream is handled in order, so
	// once the pong is back the resource is available and a message to
	// the bare JID reaches it instead of offline storage. The server may
	// send the presence back first.
	write("<presence/><iq type='get' id='ready'><ping xmlns='urn:xmpp:ping'/></iq>")
	for next(false) != "iq" {
	}
	_ = nc.SetDeadline(time.Time{})
	return tc
}

// newBenchDomain is newDomainServer for a benchmark: logs at info, so
// that logging stays off the per-message path.
func newBenchDomain(tb testing.TB, domain, ip string) *domainServer {
	s := newDomainServer(tb, domain, ip, "")
	s.logLevel = "info"
	return s
}
