package sipside

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tortureDir holds the 49 RFC 4475 messages, byte-exact.
const tortureDir = "../../shared/testdata/rfc4475"

// tortureDomains are the domains the torture messages address; the test
// server serves them so that valid requests reach their handlers.
var tortureDomains = []string{"example.com", "example.org", "example.net", "chair-dnrc.example.com"}

// tortureCase is one RFC 4475 message and what its sender sees: a status
// code, or 0 for no response at all. tcp says what happens when the same
// octets are sent on a TCP connection (or a TLS one: the same framing).
type tortureCase struct {
	file    string
	section string
	want    int
	tcp     tcpOutcome
	why     string
}

// tcpOutcome is what a torture message gets on a stream.
type tcpOutcome int

const (
	// tcpSame: the same answer as on UDP, and the connection keeps
	// serving (the probe after it is answered).
	tcpSame tcpOutcome = iota
	// tcpCloses: the same answer, then the server closes the connection
	// because the message's Content-Length leaves no way to find where
	// the next message starts (RFC 3261 §18.3).
	tcpCloses
	// tcpSkip: not sent on TCP; tcpSkipWhy says why.
	tcpSkip
)

// tcpSkipWhy explains every tcpSkip case. Each is a property of the
// octets on a stream, not a gap in the server: over TCP, Content-Length
// (or the empty line ending the headers) is the only message boundary.
var tcpSkipWhy = map[string]string{
	"clerr": "Content-Length 9999 promises more octets than the file has; on a stream " +
		"the server rightly waits for them, and the probe would be read as that body",
	"baddn": "the file ends without the empty line that closes the header section; on a " +
		"stream the probe's lines would be read as more of its headers",
	"inv2543": "an RFC 2543 request with a body and no Content-Length: on a stream its " +
		"body cannot be delimited (RFC 3261 §18.3), so its SDP lines and the probe run together",
}

// tortureCases is the table the project asks for: every message of
// RFC 4475 with the section that describes it and our answer.
var tortureCases = []tortureCase{
	// §3.1.1 Valid messages: accepted and processed.
	{"wsinv", "3.1.1.1", 481, tcpSame, "valid; its To has a tag and no dialog exists (RFC 3261 §12.2.2)"},
	{"intmeth", "3.1.1.2", 501, tcpSame, "valid; the method is unknown (RFC 3261 §8.2.1)"},
	{"esc01", "3.1.1.3", 404, tcpSame, "valid; INVITE for an unknown user"},
	{"escnull", "3.1.1.4", 401, tcpSame, "valid REGISTER; challenged before the AOR is looked at (§10.3 step 3)"},
	{"esc02", "3.1.1.5", 501, tcpSame, "valid; RE%47IST%45R is an unknown method, not REGISTER"},
	{"lwsdisp", "3.1.1.6", 200, tcpSame, "valid OPTIONS"},
	{"longreq", "3.1.1.7", 404, tcpSame, "valid INVITE for an unknown user; the response exceeds 1300 bytes"},
	{"dblreq", "3.1.1.8", 401, tcpSame, "valid REGISTER; the INVITE after its Content-Length is ignored on UDP (on TCP it is the next message)"},
	{"semiuri", "3.1.1.9", 200, tcpSame, "valid OPTIONS"},
	{"transports", "3.1.1.10", 200, tcpSame, "valid OPTIONS"},
	{"mpart01", "3.1.1.11", 415, tcpSame, "valid MESSAGE; multipart/mixed is not a body we interpret (§8.2.3)"},
	{"unreason", "3.1.1.12", 0, tcpSame, "a response matching no transaction is discarded"},
	{"noreason", "3.1.1.13", 0, tcpSame, "a response matching no transaction is discarded"},
	// §3.1.2 Invalid messages.
	{"badinv01", "3.1.2.1", 400, tcpSame, "extraneous header field separators"},
	{"clerr", "3.1.2.2", 400, tcpSkip, "Content-Length larger than the datagram"},
	{"ncl", "3.1.2.3", 400, tcpCloses, "negative Content-Length"},
	{"scalar02", "3.1.2.4", 400, tcpSame, "overlarge CSeq, Max-Forwards, Expires"},
	{"scalarlg", "3.1.2.5", 0, tcpSame, "malformed response: discarded"},
	{"quotbal", "3.1.2.6", 400, tcpSame, "unterminated quoted string"},
	{"ltgtruri", "3.1.2.7", 400, tcpSame, "<> around the Request-URI"},
	{"lwsruri", "3.1.2.8", 400, tcpSame, "LWS inside the Request-URI"},
	{"lwsstart", "3.1.2.9", 400, tcpSame, "several SP between request-line elements"},
	{"trws", "3.1.2.10", 400, tcpSame, "SP after the SIP-Version"},
	{"escruri", "3.1.2.11", 400, tcpSame, "escaped headers in the Request-URI"},
	{"baddate", "3.1.2.12", 404, tcpSame, "the Date is not needed, so the request is processed (INVITE, unknown user)"},
	{"regbadct", "3.1.2.13", 400, tcpSame, "Contact URI with headers not in <>"},
	{"badaspec", "3.1.2.14", 400, tcpSame, "spaces inside an addr-spec"},
	{"baddn", "3.1.2.15", 400, tcpSkip, "non-token characters in an unquoted display name"},
	{"badvers", "3.1.2.16", 505, tcpSame, "SIP/7.0"},
	{"mismatch01", "3.1.2.17", 400, tcpSame, "CSeq method differs from the request method"},
	{"mismatch02", "3.1.2.18", 400, tcpSame, "unknown method and a CSeq method that differs"},
	{"bigcode", "3.1.2.19", 0, tcpSame, "malformed response: discarded"},
	// §3.2 Transaction layer semantics.
	{"badbranch", "3.2.1", 400, tcpSame, "branch is the magic cookie alone"},
	// §3.3 Application layer semantics.
	{"insuf", "3.3.1", 400, tcpSame, "missing Call-ID, From and To"},
	{"unkscm", "3.3.2", 416, tcpSame, "unknown Request-URI scheme"},
	{"novelsc", "3.3.3", 416, tcpSame, "soap.beep: Request-URI (sipgo refuses to parse it; our fallback answers)"},
	{"unksm2", "3.3.4", 400, tcpSame, "REGISTER whose To is not a SIP URI"},
	{"bext01", "3.3.5", 420, tcpSame, "unknown Require/Proxy-Require; Unsupported lists them"},
	{"invut", "3.3.6", 415, tcpSame, "INVITE body of an unknown type"},
	{"regaut01", "3.3.7", 401, tcpSame, "unknown Authorization scheme: challenged"},
	{"multi01", "3.3.8", 400, tcpSame, "several values in single-value headers"},
	{"mcl01", "3.3.9", 400, tcpCloses, "several Content-Length values"},
	{"bcast", "3.3.10", 0, tcpSame, "a response matching no transaction is discarded"},
	{"zeromf", "3.3.11", 200, tcpSame, "Max-Forwards 0 on an OPTIONS this server answers itself"},
	{"cparam01", "3.3.12", 401, tcpSame, "valid REGISTER; challenged"},
	{"cparam02", "3.3.13", 401, tcpSame, "valid REGISTER; challenged"},
	{"regescrt", "3.3.14", 401, tcpSame, "valid REGISTER; challenged"},
	{"sdp01", "3.3.15", 406, tcpSame, "Accept excludes application/sdp"},
	// §3.4 Backward compatibility.
	{"inv2543", "3.4.1", 404, tcpSkip, "RFC 2543 INVITE processed (unknown user)"},
}

func readTorture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tortureDir, name+".dat"))
	if err != nil {
		t.Fatalf("RFC 4475 message: %v", err)
	}
	return b
}

func probeRequest(transport, local, id string) []byte {
	return []byte(fmt.Sprintf("OPTIONS sip:example.com SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:probe@example.net>;tag=p1\r\nTo: <sip:example.com>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", transport, local, id, id))
}

// orderingPause separates the message under test from the probe that
// follows it, so the probe cannot overtake it in the server's concurrent
// handling. It orders events and asserts nothing.
const orderingPause = 20 * time.Millisecond

// sendUDP sends msg from a fresh socket, then an OPTIONS probe, and
// returns the status codes of every response that is not the probe's,
// in arrival order. The probe's answer marks the end; with wantAny, so
// does a first response to msg, whichever comes last, so that a handler
// slower than the probe's is still waited for.
func sendUDP(t *testing.T, server string, msg []byte, probeID string, wantAny bool) []int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	dst, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteTo(msg, dst); err != nil {
		t.Fatal(err)
	}
	time.Sleep(orderingPause)
	if _, err := conn.WriteTo(probeRequest("UDP", conn.LocalAddr().String(), probeID), dst); err != nil {
		t.Fatal(err)
	}
	var got []int
	probed := false
	buf := make([]byte, 65536)
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for !probed || (wantAny && len(got) == 0) {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if probed {
				return got
			}
			t.Fatalf("no answer to the probe: %v (responses so far %v)", err, got)
		}
		if bytes.Contains(buf[:n], []byte(probeID)) {
			probed = true
			continue
		}
		got = append(got, statusOf(buf[:n]))
	}
	return got
}

// sendTCP does what sendUDP does on one TCP connection.
//
// With closes, the server is expected to close the connection after its
// answer: the probe is then not answered, and the end of the stream
// marks the end.
func sendTCP(t *testing.T, server string, msg []byte, probeID string, wantAny, closes bool) []int {
	t.Helper()
	conn, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	return sendStream(t, conn, "TCP", msg, probeID, wantAny, closes)
}

// sendTLS does what sendTCP does on a TLS connection.
func sendTLS(t *testing.T, server string, msg []byte, probeID string, wantAny, closes bool) []int {
	t.Helper()
	conn, err := tls.Dial("tcp", server, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // generated test certificate
	if err != nil {
		t.Fatal(err)
	}
	return sendStream(t, conn, "TLS", msg, probeID, wantAny, closes)
}

func sendStream(t *testing.T, conn net.Conn, transport string, msg []byte, probeID string, wantAny, closes bool) []int {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(orderingPause)
	if _, err := conn.Write(probeRequest(transport, conn.LocalAddr().String(), probeID)); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var got []int
	probed := false
	for !probed || (wantAny && len(got) == 0) {
		m, err := readStreamMessage(r)
		if err != nil {
			if probed {
				return got
			}
			if closes && errors.Is(err, io.EOF) {
				return got
			}
			t.Fatalf("no answer to the probe: %v (responses so far %v)", err, got)
		}
		if bytes.Contains(m, []byte(probeID)) {
			if closes {
				t.Errorf("the probe was answered on a connection that should have been closed")
			}
			probed = true
			continue
		}
		got = append(got, statusOf(m))
	}
	return got
}

// readStreamMessage reads one SIP message framed by Content-Length.
func readStreamMessage(r *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	clen := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keep-alive CRLF
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); ok && (n == "content-length" || n == "l") {
			clen, _ = strconv.Atoi(strings.TrimSpace(val))
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body...), nil
}

// TestTorture replays every RFC 4475 message byte-exact to a running
// server and checks the answer its sender receives. Each case gets a
// fresh server: several messages reuse one Via branch and sent-by, which
// would otherwise match the earlier message's transaction.
func TestTorture(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(tortureDir, "*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 49 || len(tortureCases) != 49 {
		t.Fatalf("%d files and %d cases, want 49 of each", len(files), len(tortureCases))
	}
	listed := make(map[string]bool)
	for _, c := range tortureCases {
		listed[c.file] = true
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".dat"); !listed[name] {
			t.Errorf("%s has no case", name)
		}
	}
	for _, transport := range []string{"udp", "tcp", "tls"} {
		for _, c := range tortureCases {
			if transport != "udp" && c.tcp == tcpSkip {
				if tcpSkipWhy[c.file] == "" {
					t.Errorf("%s is skipped on TCP without a reason", c.file)
				}
				continue
			}
			t.Run(transport+"/"+c.section+"_"+c.file, func(t *testing.T) {
				msg := readTorture(t, c.file)
				ts := startServer(t, newUsers(t), tortureDomains, nil)
				var got []int
				switch transport {
				case "udp":
					got = sendUDP(t, ts.udp, msg, "probe-"+c.file, c.want != 0)
				case "tcp":
					got = sendTCP(t, ts.tcp, msg, "probe-"+c.file, c.want != 0, c.tcp == tcpCloses)
				default:
					got = sendTLS(t, ts.tls, msg, "probe-"+c.file, c.want != 0, c.tcp == tcpCloses)
				}
				switch {
				case c.want == 0 && len(got) != 0:
					t.Errorf("RFC 4475 §%s %s (%s): got responses %v, want none", c.section, c.file, c.why, got)
				case c.want != 0 && transport == "udp" && (len(got) == 0 || got[0] != c.want),
					// On a stream, octets after a message's body are
					// the next message (dblreq), answered concurrently.
					c.want != 0 && transport != "udp" && !slices.Contains(got, c.want):
					t.Errorf("RFC 4475 §%s %s (%s): got %v, want %d", c.section, c.file, c.why, got, c.want)
				}
			})
		}
	}
}
