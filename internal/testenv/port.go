package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// RequirePeersEnv is the environment variable that turns "program not
// installed" from a skip into a failure.
const RequirePeersEnv = "UMPP_REQUIRE_PEERS"

// FreePort returns a port on ip (a loopback address) that was free for
// network ("tcp" or "udp") a moment ago. Use "tcp+udp" for a port free for
// both, as a DNS or SIP server needs.
func FreePort(t testing.TB, network, ip string) int {
	t.Helper()
	checkLoopback(t, ip)
	for range 20 {
		port, err := freePort(network, ip)
		if err == nil {
			return port
		}
	}
	t.Fatalf("testenv: no free %s port on %s", network, ip)
	return 0
}

func freePort(network, ip string) (int, error) {
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("listen tcp %s: %w", ip, err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	case "udp":
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("listen udp %s: %w", ip, err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	case "tcp+udp":
		port, err := freePort("udp", ip)
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
		if err != nil {
			return 0, fmt.Errorf("port %d free for udp, not tcp: %w", port, err)
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("unknown network %q", network)
}

func checkLoopback(t testing.TB, ip string) {
	t.Helper()
	if a := net.ParseIP(ip); a == nil || !a.IsLoopback() {
		t.Fatalf("testenv: %q is not a loopback address; tests stay inside 127.0.0.0/8 and ::1", ip)
	}
}

// lookProgram finds an installed program, also in the sbin directories a
// non-root PATH may lack, or skips the test.
func lookProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("testenv: %s is not installed (apt-get install %s)", name, pkg)
	if os.Getenv(RequirePeersEnv) != "" {
		t.Fatalf("%s and %s is set", msg, RequirePeersEnv)
	}
	t.Skip(msg + "; skipping")
	return ""
}
