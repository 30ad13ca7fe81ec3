package xmppside

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// rawLogin logs in over STARTTLS with PLAIN, binds resource and returns
// the TLS connection, positioned after the bind result.
func rawLogin(tb testing.TB, h *s2sHost, user, password, resource string) net.Conn {
	tb.Helper()
	nc, err := net.Dial("tcp", h.c2s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='" + nsStream + "' to='" + h.domain + "' version='1.0'>"
	r := &rawConn{t: tb, nc: nc, d: xml.NewDecoder(bufio.NewReader(nc))}
	r.mustWrite(hdr)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<starttls xmlns='" + nsTLS + "'/>")
	r.mustRead("proceed")
	tc := tls.Client(nc, h.clientTC)
	if err := tc.Handshake(); err != nil {
		tb.Fatal(err)
	}
	r.nc, r.d = tc, xml.NewDecoder(bufio.NewReader(tc))
	r.mustWrite(hdr)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + "</auth>")
	r.mustRead("success")
	r.mustWrite(hdr)
	r.readHeader()
	r.mustRead("features")
	r.mustWrite("<iq type='set' id='b1'><bind xmlns='" + nsBind + "'><resource>" + resource + "</resource></bind></iq>")
	r.mustRead("iq")
	r.mustWrite("<presence/>")
	_ = tc.SetDeadline(time.Time{})
	return tc
}

// countReader counts "</message>" in what it reads.
func countUntil(r io.Reader, want int, timeout time.Duration, conn net.Conn) (int, error) {
	const tag = "</message>"
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	carry := []byte{}
	n := 0
	for n < want {
		k, err := r.Read(buf)
		chunk := append(carry, buf[:k]...)
		n += bytes.Count(chunk, []byte(tag))
		if len(chunk) >= len(tag)-1 {
			carry = append([]byte(nil), chunk[len(chunk)-(len(tag)-1):]...)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkS2SMessages measures messages per second from a client of one
// host to a client of another over s2s (STARTTLS, SASL EXTERNAL):
// client -> montague -> s2s TLS -> capulets -> client.
func BenchmarkS2SMessages(b *testing.B) {
	a, c := federation(b, true, func(hc *hostConfig) { hc.quiet = true })
	romeo := rawLogin(b, a, "romeo", "r-pw", "orchard")
	juliet := rawLogin(b, c, "juliet", "j-pw", "balcony")
	// Warm up: connect the s2s link.
	send := func(i int) string {
		return fmt.Sprintf("<message to='juliet@%s/balcony' type='chat' id='b%d'><body>benchmark message %d</body><thread>bench</thread></message>", capulets, i, i)
	}
	if _, err := io.WriteString(romeo, send(0)); err != nil {
		b.Fatal(err)
	}
	if _, err := countUntil(juliet, 1, 10*time.Second, juliet); err != nil {
		b.Fatalf("warm-up message: %v", err)
	}
	// Bounces (resource-constraint when a queue stays full) come back to
	// romeo: count them, so that a loss is told apart from a bounce.
	bounced := make(chan int, 1)
	go func() {
		n, _ := countUntil(romeo, 1<<62, time.Hour, romeo)
		bounced <- n
	}()
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(romeo)
		for i := 1; i <= b.N; i++ {
			if _, err := w.WriteString(send(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Flush()
	}()
	got, err := countUntil(juliet, b.N, 20*time.Second, juliet)
	b.StopTimer()
	if err != nil {
		_ = romeo.SetReadDeadline(time.Now().Add(time.Second))
		b.Fatalf("received %d of %d (%d bounced to the sender): %v", got, b.N, <-bounced, err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
