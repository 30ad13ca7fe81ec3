package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// validator checks a decoded Config, normalizes it (lower-case domains,
// absolute paths, default peer modes) and records problems on the decoder.
type validator struct {
	*decoder
	cfg  *Config
	base string // directory relative paths are resolved against

	bindings []binding
}

// binding is one socket a listener will bind.
type binding struct {
	proto string // "udp" or "tcp"
	addr  netip.Addr
	port  int
	path  string
}

func (v *validator) validate() {
	v.domains()
	v.dataDir()
	v.sip()
	v.xmpp()
	v.tls()
	v.dns()
	v.peers()
	v.federation()
	v.limits()
	v.positive("session.idle_timeout", int64(v.cfg.Session.IdleTimeout))
	v.oneOf("log.level", v.cfg.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", v.cfg.Log.Format, "text", "json")
	if v.cfg.Metrics.Listen != "" {
		v.listenHostPort("metrics.listen", v.cfg.Metrics.Listen)
	}
}

func (v *validator) domains() {
	c := v.cfg
	if len(c.Domains) == 0 && !v.isBad("domains") {
		if _, written := v.index.lines["domains"]; written {
			v.problem("domains", "list at least one hosted domain")
		} else {
			v.problem("domains", `missing: list the domains this server hosts, e.g. domains = ["example.net"]`)
		}
		return
	}
	seen := map[string]string{}
	for i, d := range c.Domains {
		p := fmt.Sprintf("domains[%d]", i)
		if v.isBad(p) {
			continue
		}
		n, err := NormalizeDomain(d)
		if err != nil {
			v.problem(p, "%v", err)
			continue
		}
		c.Domains[i] = n
		if first, dup := seen[n]; dup {
			v.problem(p, "duplicate domain %q (already listed%s)", n, v.where(first))
			continue
		}
		seen[n] = p
	}
}

// written reports whether the list holding the element at path (or the
// key at path) is written in the file, rather than coming from the
// defaults.
func (v *validator) written(path string) bool {
	_, ok := v.index.lines[path]
	if !ok {
		_, ok = v.index.lines[parent(path)]
	}
	return ok
}

// where returns " on line N" for path, or "".
func (v *validator) where(path string) string {
	if n := v.index.line(path); n > 0 {
		return " on line " + strconv.Itoa(n)
	}
	return ""
}

func (v *validator) dataDir() {
	if v.isBad("data_dir") {
		return
	}
	if v.cfg.DataDir == "" {
		v.problem("data_dir", "must not be empty")
		return
	}
	v.cfg.DataDir = v.resolve(v.cfg.DataDir)
}

func (v *validator) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.base, p)
}

func (v *validator) sip() {
	for i, l := range v.cfg.SIP.Listen {
		p := fmt.Sprintf("sip.listen[%d]", i)
		if v.isBad(p) {
			continue
		}
		addr, ok := v.listenHost(p, l.String(), l.Host)
		if !ok {
			continue
		}
		proto := "tcp"
		if l.Transport == "udp" {
			proto = "udp"
		}
		v.bind(binding{proto: proto, addr: addr, port: l.Port, path: p})
	}
	if !v.isBad("sip.digest_algorithms") && len(v.cfg.SIP.DigestAlgorithms) == 0 {
		v.problem("sip.digest_algorithms", "at least one algorithm is needed: \"SHA-256\" and/or \"MD5\"")
	}
	seen := map[string]bool{}
	for i, a := range v.cfg.SIP.DigestAlgorithms {
		p := fmt.Sprintf("sip.digest_algorithms[%d]", i)
		if v.isBad(p) {
			continue
		}
		// RFC 8760 names are case-insensitive; keep the canonical spelling.
		switch strings.ToUpper(a) {
		case "SHA-256":
			a = "SHA-256"
		case "MD5":
			a = "MD5"
		default:
			v.problem(p, "%q is not one of [SHA-256 MD5]", a)
			continue
		}
		if seen[a] {
			v.problem(p, "%s is listed twice", a)
		}
		seen[a] = true
		v.cfg.SIP.DigestAlgorithms[i] = a
	}
}

func (v *validator) xmpp() {
	x := v.cfg.XMPP
	for _, list := range []struct {
		key   string
		addrs []string
	}{
		{"xmpp.c2s_listen", x.C2SListen},
		{"xmpp.c2s_direct_tls_listen", x.C2SDirectListen},
		{"xmpp.s2s_listen", x.S2SListen},
	} {
		for i, a := range list.addrs {
			v.listenHostPort(fmt.Sprintf("%s[%d]", list.key, i), a)
		}
	}
	v.positive("xmpp.s2s_idle_timeout", int64(x.S2SIdleTimeout))
}

// listenHostPort checks a TCP listen address "host:port" and records its
// binding.
func (v *validator) listenHostPort(path, hostport string) {
	if v.isBad(path) {
		return
	}
	host, port, err := ParseHostPort(hostport)
	if err != nil {
		v.problem(path, "%v", err)
		return
	}
	if addr, ok := v.listenHost(path, hostport, host); ok {
		v.bind(binding{proto: "tcp", addr: addr, port: port, path: path})
	}
}

// listenHost checks that a listener's host is an IP literal or
// "localhost" (taken as 127.0.0.1), and returns the address.
func (v *validator) listenHost(path, what, host string) (netip.Addr, bool) {
	if host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		v.problem(path, `%q: the host must be an IP address (such as 127.0.0.1, [::1] or 0.0.0.0) or "localhost", not a name`, what)
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// bind records a binding, reporting a clash with one recorded before: two
// listeners cannot bind the same protocol, port and address, and an
// unspecified address (0.0.0.0, ::) takes the port on every address of
// its family (:: on IPv4 too).
func (v *validator) bind(b binding) {
	for _, o := range v.bindings {
		if o.proto != b.proto || o.port != b.port || !overlap(o.addr, b.addr) {
			continue
		}
		// Point at the listener written in the file, not at a default.
		if !v.written(b.path) && v.written(o.path) {
			b, o = o, b
		}
		other := keyOf(o.path) + " (default)"
		if v.written(o.path) {
			other = keyOf(o.path) + v.where(o.path)
		}
		v.problem(b.path, "%s port %s is already used by %s",
			b.proto, netip.AddrPortFrom(b.addr, uint16(b.port)), other)
		return
	}
	v.bindings = append(v.bindings, b)
}

func overlap(a, b netip.Addr) bool {
	switch {
	case a == b:
		return true
	case a.IsUnspecified() && a.Is6(), b.IsUnspecified() && b.Is6():
		return true
	case a.IsUnspecified():
		return b.Is4()
	case b.IsUnspecified():
		return a.Is4()
	}
	return false
}

func (v *validator) tls() {
	t := &v.cfg.TLS
	if v.isBad("tls.cert") || v.isBad("tls.key") || v.isBad("tls.ca") {
		return
	}
	switch {
	case t.Cert != "" && t.Key == "":
		v.problem("tls.cert", "a certificate needs its private key: set tls.key too (or neither, for a self-signed certificate)")
	case t.Cert == "" && t.Key != "":
		v.problem("tls.key", "a private key needs its certificate: set tls.cert too (or neither, for a self-signed certificate)")
	case t.Cert != "":
		t.Cert, t.Key = v.resolve(t.Cert), v.resolve(t.Key)
		certOK := v.readable("tls.cert", t.Cert)
		keyOK := v.readable("tls.key", t.Key)
		if certOK && keyOK {
			if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
				v.problem("tls.cert", "%s and %s are not a matching certificate and key: %v", t.Cert, t.Key, err)
			}
		}
	}
	if t.CA != "" {
		t.CA = v.resolve(t.CA)
		if v.readable("tls.ca", t.CA) {
			if err := checkCAFile(t.CA); err != nil {
				v.problem("tls.ca", "%v", err)
			}
		}
	}
}

func (v *validator) readable(path, file string) bool {
	f, err := os.Open(file)
	if err != nil {
		v.problem(path, "cannot read %s: %v", file, unwrapPath(err))
		return false
	}
	f.Close()
	return true
}

// unwrapPath drops the file name an *os.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkCAFile checks that file holds PEM certificates and nothing else.
func checkCAFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", file, unwrapPath(err))
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("%s: holds a PEM %q block; only certificates belong in a CA file", file, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	return nil
}

func (v *validator) dns() {
	s := v.cfg.DNS.Server
	if s == "" || v.isBad("dns.server") {
		return
	}
	host, _, err := ParseHostPort(s)
	if err != nil {
		v.problem("dns.server", "%v (e.g. \"127.0.0.1:53\")", err)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		v.problem("dns.server", "%q: the host must be an IP address", s)
	}
}

func (v *validator) peers() {
	hosted := map[string]bool{}
	for _, d := range v.cfg.Domains {
		hosted[d] = true
	}
	seen := map[string]string{}
	for i := range v.cfg.Peers {
		peer := &v.cfg.Peers[i]
		p := fmt.Sprintf("peer[%d]", i)
		if v.isBad(p) {
			continue
		}
		if !v.isBad(p + ".domain") {
			if peer.Domain == "" {
				v.problem(p+".domain", "missing: every [[peer]] needs the domain it is for")
			} else if d, err := NormalizeDomain(peer.Domain); err != nil {
				v.problem(p+".domain", "%v", err)
			} else {
				peer.Domain = d
				switch first, dup := seen[d]; {
				case hosted[d]:
					v.problem(p+".domain", "%q is one of our own domains, not a peer", d)
				case dup:
					v.problem(p+".domain", "duplicate peer %q (already configured%s)", d, v.where(first))
				default:
					seen[d] = p
				}
			}
		}
		if peer.SIP != "" && !v.isBad(p+".sip") {
			if _, err := ParseURL(peer.SIP); err != nil {
				v.problem(p+".sip", "%v", err)
			}
		}
		if peer.XMPP != "" && !v.isBad(p+".xmpp") {
			if _, _, err := ParseHostPort(peer.XMPP); err != nil {
				v.problem(p+".xmpp", "%v", err)
			}
		}
		if v.isBad(p + ".mode") {
			continue
		}
		if peer.Mode == "" {
			peer.Mode = "auto"
		}
		switch peer.Mode {
		case "auto":
			if peer.SIP == "" && peer.XMPP == "" {
				v.problem(p, "set sip, xmpp or both for peer %q", peer.Domain)
			}
		case "umpp":
			if peer.SIP == "" || peer.XMPP == "" {
				v.problem(p+".mode", `"umpp" needs both sip and xmpp targets`)
			}
		case "xmpp":
			if peer.XMPP == "" {
				v.problem(p+".mode", `"xmpp" needs an xmpp target`)
			} else if peer.SIP != "" {
				v.problem(p+".sip", `set, but mode "xmpp" never uses SIP: remove it or use mode "umpp"`)
			}
		case "sip":
			if peer.SIP == "" {
				v.problem(p+".mode", `"sip" needs a sip target`)
			} else if peer.XMPP != "" {
				v.problem(p+".xmpp", `set, but mode "sip" never uses XMPP: remove it or use mode "umpp"`)
			}
		default:
			v.problem(p+".mode", "%q is not one of auto, umpp, xmpp, sip", peer.Mode)
		}
	}
}

func (v *validator) federation() {
	f := &v.cfg.Federation
	v.oneOf("federation.policy", f.Policy, "open", "allowlist")
	for i, d := range f.Allow {
		p := fmt.Sprintf("federation.allow[%d]", i)
		if v.isBad(p) {
			continue
		}
		n, err := NormalizeDomain(d)
		if err != nil {
			v.problem(p, "%v", err)
			continue
		}
		f.Allow[i] = n
	}
}

func (v *validator) limits() {
	l := reflect.ValueOf(v.cfg.Limits)
	for i := range l.NumField() {
		v.positive("limits."+l.Type().Field(i).Tag.Get("toml"), l.Field(i).Int())
	}
}

func (v *validator) positive(path string, n int64) {
	if n <= 0 && !v.isBad(path) {
		v.problem(path, "must be greater than zero")
	}
}

func (v *validator) oneOf(path, value string, allowed ...string) {
	if !v.isBad(path) && !slices.Contains(allowed, value) {
		v.problem(path, "%q is not one of %v", value, allowed)
	}
}
