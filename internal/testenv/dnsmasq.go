package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is a running dnsmasq started by [DNSMasq].
type DNS struct {
	// Addr is where it listens, UDP and TCP: "127.0.0.x:port".
	Addr string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process is gone
	stop   sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new log line
	log     []string
	syncs   int
}

// DNSMasq starts dnsmasq on ip (a loopback address; "" means 127.0.0.1) and
// a free port, serving only what options say, waits until it answers, and
// stops it when the test ends. It skips the test when dnsmasq is not
// installed (see the package documentation).
//
// Each option is a dnsmasq long option with or without its leading "--",
// for example:
//
//	"srv-host=_sip._udp.capulets.example.com,sip.capulets.example.com,5060,10,0"
//	"srv-host=_xmpp-server._tcp.none.example.com"  (target ".": no service)
//	"host-record=capulets.example.com,127.0.0.10"
//	"local=/example.com/"   (NXDOMAIN/NODATA for unknown names there)
//	"local-ttl=300"         (TTL of the answers; dnsmasq's default is 0)
//
// dnsmasq runs with --no-resolv --no-hosts and no configuration file, so it
// never forwards a query; names it knows nothing about get REFUSED.
func DNSMasq(t testing.TB, ip string, options ...string) *DNS {
	t.Helper()
	if ip == "" {
		ip = "127.0.0.1"
	}
	checkLoopback(t, ip)
	prog := lookProgram(t, "dnsmasq", "dnsmasq-base")
	var lastErr error
	for range 5 {
		port := FreePort(t, "tcp+udp", ip)
		d, err := startDNSMasq(prog, ip, port, options)
		if err == nil {
			t.Cleanup(d.Stop)
			return d
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return nil
}

func startDNSMasq(prog, ip string, port int, options []string) (*DNS, error) {
	args := []string{
		"--keep-in-foreground",
		"--log-facility=-", // stderr
		"--log-queries",
		"--conf-file", // no argument: read no configuration file
		"--pid-file",  // no argument: write no pid file
		"--no-resolv",
		"--no-hosts",
		"--bind-interfaces",
		"--listen-address=" + ip,
		"--port=" + strconv.Itoa(port),
	}
	for _, o := range options {
		args = append(args, "--"+strings.TrimPrefix(o, "--"))
	}
	d := &DNS{
		Addr:    net.JoinHostPort(ip, strconv.Itoa(port)),
		cmd:     exec.Command(prog, args...),
		exited:  make(chan struct{}),
		changed: make(chan struct{}),
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("dnsmasq: %w", err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.addLine(sc.Text())
		}
	}()
	go func() {
		<-readDone // Wait closes the pipe: read everything first
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if err := d.ask(ctx, "ready.testenv.invalid."); err == nil {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("dnsmasq %s exited early:\n%s", strings.Join(args, " "), d.output())
		case <-ctx.Done():
			d.Stop()
			return nil, fmt.Errorf("dnsmasq on %s did not answer within 10s:\n%s", d.Addr, d.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops dnsmasq (SIGTERM, then SIGKILL after 5s) and waits for it. It
// runs at cleanup anyway; call it to test what happens when the server is
// gone.
func (d *DNS) Stop() {
	d.stop.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
}

// Queries returns the queries dnsmasq has received so far, in order, as
// "TYPE name" (e.g. "SRV _sip._udp.capulets.example.com"), leaving out the
// helper's own probes. It first makes sure every query answered before the
// call has been logged.
func (d *DNS) Queries(t testing.TB) []string {
	t.Helper()
	d.mu.Lock()
	d.syncs++
	marker := fmt.Sprintf("sync-%d.testenv.invalid", d.syncs)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.ask(ctx, marker+"."); err != nil {
		t.Fatalf("testenv: dnsmasq on %s: %v", d.Addr, err)
	}
	for {
		d.mu.Lock()
		changed := d.changed
		qs, found := d.queriesUntil("A " + marker)
		d.mu.Unlock()
		if found {
			return qs
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("testenv: dnsmasq on %s did not log query %s:\n%s", d.Addr, marker, d.output())
		}
	}
}

// QueryCount returns how many queries of type qtype ("SRV", "A", ...) for
// name (without trailing dot) dnsmasq has received.
func (d *DNS) QueryCount(t testing.TB, qtype, name string) int {
	t.Helper()
	n := 0
	want := qtype + " " + strings.TrimSuffix(name, ".")
	for _, q := range d.Queries(t) {
		if strings.EqualFold(q, want) {
			n++
		}
	}
	return n
}

// parseQuery reads "TYPE name" from a dnsmasq log line such as
// "dnsmasq[42]: query[SRV] _sip._udp.example.com from 127.0.0.1".
func parseQuery(line string) (qtype, name string, ok bool) {
	_, rest, ok := strings.Cut(line, ": query[")
	if !ok {
		return "", "", false
	}
	qtype, rest, ok = strings.Cut(rest, "] ")
	if !ok {
		return "", "", false
	}
	name, _, ok = strings.Cut(rest, " from ")
	if !ok {
		return "", "", false
	}
	return qtype, name, true
}

// queriesUntil parses the log up to the marker query; d.mu must be held.
func (d *DNS) queriesUntil(marker string) ([]string, bool) {
	var qs []string
	for _, line := range d.log {
		qtype, name, ok := parseQuery(line)
		if !ok {
			continue
		}
		q := qtype + " " + name
		if q == marker {
			return qs, true
		}
		if strings.HasSuffix(name, ".testenv.invalid") {
			continue
		}
		qs = append(qs, q)
	}
	return qs, false
}

func (d *DNS) addLine(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = append(d.log, line)
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *DNS) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// ask sends one query and waits for any answer.
func (d *DNS) ask(ctx context.Context, name string) error {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	_, _, err := c.ExchangeContext(ctx, m, d.Addr)
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	return nil
}
