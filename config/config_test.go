package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/umpp/umpp/internal/certs"
)

func TestDefault(t *testing.T) {
	c := Default()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" {
		t.Errorf("File = %q, want \"\"", c.File)
	}
	if !slices.Equal(c.Domains, []string{"localhost"}) {
		t.Errorf("Domains = %q", c.Domains)
	}
	if want := filepath.Join(wd, "umppd-data"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	var listen []string
	for _, l := range c.SIP.Listen {
		listen = append(listen, l.String())
	}
	if want := []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060", "tls://127.0.0.1:5061"}; !slices.Equal(listen, want) {
		t.Errorf("SIP.Listen = %q, want %q", listen, want)
	}
	if !slices.Equal(c.XMPP.C2SListen, []string{"127.0.0.1:5222"}) ||
		!slices.Equal(c.XMPP.C2SDirectListen, []string{"127.0.0.1:5223"}) ||
		!slices.Equal(c.XMPP.S2SListen, []string{"127.0.0.1:5269"}) {
		t.Errorf("XMPP listeners = %+v", c.XMPP)
	}
	if c.XMPP.S2SIdleTimeout != 10*time.Minute || !c.XMPP.S2SRequireTLS {
		t.Errorf("XMPP = %+v", c.XMPP)
	}
	if c.TLS != (TLS{}) || c.DNS.Server != "" || len(c.Peers) != 0 {
		t.Errorf("TLS = %+v, DNS = %+v, Peers = %+v", c.TLS, c.DNS, c.Peers)
	}
	if c.Federation.Policy != "open" || c.Session.IdleTimeout != 10*time.Minute {
		t.Errorf("Federation = %+v, Session = %+v", c.Federation, c.Session)
	}
	if want := (Limits{262144, 65535, 1000, 10000, 1000}); c.Limits != want {
		t.Errorf("Limits = %+v, want %+v", c.Limits, want)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) || c.Metrics.Listen != "127.0.0.1:9477" {
		t.Errorf("Log = %+v, Metrics = %+v", c.Log, c.Metrics)
	}
}

func TestExampleLoads(t *testing.T) {
	c, err := Load("umppd.example.toml")
	if err != nil {
		t.Fatalf("the example has problems:\n%v", err)
	}
	if !slices.Equal(c.Domains, []string{"montague.example.net"}) {
		t.Errorf("Domains = %q", c.Domains)
	}
	want := Peer{Domain: "capulets.example.com", SIP: "tls://127.0.0.2:5061", XMPP: "127.0.0.2:5269", Mode: "auto"}
	if len(c.Peers) != 1 || c.Peers[0] != want {
		t.Errorf("Peers = %+v, want [%+v]", c.Peers, want)
	}
	abs, _ := filepath.Abs("umppd-data")
	if c.DataDir != abs {
		t.Errorf("DataDir = %q, want %q", c.DataDir, abs)
	}
	if c.File != "umppd.example.toml" {
		t.Errorf("File = %q", c.File)
	}
}

// documentedKeys returns the keys written in a TOML document, including
// those in commented-out lines such as "# domain = ..." and "# [[peer]]".
func documentedKeys(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	commented := regexp.MustCompile(`(?m)^# ?(\[\[?[a-z_.]+\]\]?|[a-z_]+ = .*)$`)
	data = commented.ReplaceAll(data, []byte("$1"))
	if _, _, probs := decodeTree(file, data); probs != nil {
		t.Fatalf("%s (commented lines uncommented) does not parse: %v", file, probs)
	}
	ix, err := indexLines(data)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range ix.keys {
		if k := keyOf(p); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestEveryKeyDocumented(t *testing.T) {
	known := Keys()
	if len(known) < 28 || !slices.Contains(known, "peer.domain") || !slices.Contains(known, "sip.listen") {
		t.Fatalf("Keys() = %q: missing keys", known)
	}
	for _, file := range []string{"umppd.example.toml", "default.toml"} {
		t.Run(file, func(t *testing.T) {
			written := documentedKeys(t, file)
			for _, k := range known {
				if !slices.Contains(written, k) {
					t.Errorf("%s does not document %s", file, k)
				}
			}
			for _, k := range written {
				if !slices.Contains(known, k) {
					t.Errorf("%s has %s, which Config does not know", file, k)
				}
			}
		})
	}
}

// problems parses doc as dir/umppd.toml and returns its problems as
// strings with the directory cut out.
func problems(t *testing.T, dir, doc string) []string {
	t.Helper()
	name := filepath.Join(dir, "umppd.toml")
	_, err := Parse(name, []byte(doc))
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, not Problems: %v", err, err)
	}
	out := strings.Split(err.Error(), "\n")
	if len(out) != len(ps) {
		t.Errorf("Error() has %d lines for %d problems", len(out), len(ps))
	}
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], dir+string(filepath.Separator), "")
	}
	return out
}

// writeCert generates a certificate and key into dir with the given base
// name.
func writeCert(t *testing.T, dir, name string) {
	t.Helper()
	c, k, err := certs.Generate([]string{"montague.example.net"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), k, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenConfigs(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "a")
	writeCert(t, dir, "b")
	if err := os.WriteFile(filepath.Join(dir, "notpem.txt"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const d = "domains = [\"montague.example.net\"]\n"
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		doc  string
		want string // the one problem, as printed (file name relative to dir)
	}{
		{"unknown top-level key", d + "colour = \"blue\"\n",
			`umppd.toml:2: colour: unknown key`},
		{"unknown key in sip", d + "[sip]\nlisen = []\n",
			`umppd.toml:3: sip.lisen: unknown key (did you mean "listen"?)`},
		{"unknown table", d + "[sipp]\nlisten = []\n",
			`umppd.toml:2: sipp: unknown key (did you mean "sip"?)`},
		{"port 0", d + "[sip]\nlisten = [\"udp://127.0.0.1:0\"]\n",
			`umppd.toml:3: sip.listen: "udp://127.0.0.1:0": port "0" is not a number from 1 to 65535`},
		{"port 70000", d + "[xmpp]\nc2s_listen = [\"127.0.0.1:70000\"]\n",
			`umppd.toml:3: xmpp.c2s_listen: port "70000" is not a number from 1 to 65535`},
		{"port abc", d + "[sip]\nlisten = [\n  \"udp://127.0.0.1:5060\",\n  \"tcp://127.0.0.1:abc\",\n]\n",
			`umppd.toml:5: sip.listen: "tcp://127.0.0.1:abc": port "abc" is not a number from 1 to 65535`},
		{"bad scheme", d + "[sip]\nlisten = [\"sctp://127.0.0.1:5060\"]\n",
			`umppd.toml:3: sip.listen: "sctp://127.0.0.1:5060": scheme "sctp" is not udp, tcp or tls`},
		{"not a URL", d + "[sip]\nlisten = [\"127.0.0.1:5060\"]\n",
			`umppd.toml:3: sip.listen: "127.0.0.1:5060" is not a URL of the form scheme://host:port`},
		{"listen on a name", d + "[xmpp]\ns2s_listen = [\"example.net:5269\"]\n",
			`umppd.toml:3: xmpp.s2s_listen: "example.net:5269": the host must be an IP address (such as 127.0.0.1, [::1] or 0.0.0.0) or "localhost", not a name`},
		{"wrong type", d + "[xmpp]\ns2s_require_tls = \"yes\"\n",
			`umppd.toml:3: xmpp.s2s_require_tls: expected true or false, got the string "yes"`},
		{"wrong type for a list", "domains = \"montague.example.net\"\n",
			`umppd.toml:1: domains: expected a list, got the string "montague.example.net"`},
		{"missing certificate file", d + "[tls]\ncert = \"nope.crt\"\nkey = \"a.key\"\n",
			`umppd.toml:3: tls.cert: cannot read nope.crt: no such file or directory`},
		{"cert without key", d + "[tls]\ncert = \"a.crt\"\n",
			`umppd.toml:3: tls.cert: a certificate needs its private key: set tls.key too (or neither, for a self-signed certificate)`},
		{"key without cert", d + "[tls]\nkey = \"a.key\"\n",
			`umppd.toml:3: tls.key: a private key needs its certificate: set tls.cert too (or neither, for a self-signed certificate)`},
		{"key of another cert", d + "[tls]\ncert = \"a.crt\"\nkey = \"b.key\"\n",
			`umppd.toml:3: tls.cert: a.crt and b.key are not a matching certificate and key: tls: private key does not match public key`},
		{"ca not PEM", d + "[tls]\nca = \"notpem.txt\"\n",
			`umppd.toml:3: tls.ca: notpem.txt holds no PEM certificate`},
		{"ca is a key", d + "[tls]\nca = \"a.key\"\n",
			`umppd.toml:3: tls.ca: a.key: holds a PEM "PRIVATE KEY" block; only certificates belong in a CA file`},
		{"domain starting with -", "domains = [\"-bad.example\"]\n",
			`umppd.toml:1: domains: invalid domain "-bad.example": label "-bad" starts or ends with '-'`},
		{"domain with a space", "domains = [\n  \"montague.example.net\",\n  \"exa mple.com\",\n]\n",
			`umppd.toml:3: domains: invalid domain "exa mple.com": label "exa mple" contains ' '; only letters, digits and '-' are allowed`},
		{"empty label", "domains = [\"a..b\"]\n",
			`umppd.toml:1: domains: invalid domain "a..b": empty label`},
		{"label too long", "domains = [\"" + long + ".example\"]\n",
			`umppd.toml:1: domains: invalid domain "` + long + `.example": label "` + long + `" is 64 characters long, more than 63`},
		{"IP as domain", "domains = [\"127.0.0.1\"]\n",
			`umppd.toml:1: domains: "127.0.0.1" is an IP address, not a domain`},
		{"duplicate domain", "domains = [\n  \"montague.example.net\",\n  \"Montague.Example.NET\",\n]\n",
			`umppd.toml:3: domains: duplicate domain "montague.example.net" (already listed on line 2)`},
		{"no domains", "domains = []\n",
			`umppd.toml:1: domains: list at least one hosted domain`},
		{"missing domains", "data_dir = \"x\"\n",
			`umppd.toml: domains: missing: list the domains this server hosts, e.g. domains = ["example.net"]`},
		{"duplicate SIP port", d + "[sip]\nlisten = [\"tcp://127.0.0.1:5070\", \"tls://127.0.0.1:5070\"]\n",
			`umppd.toml:3: sip.listen: tcp port 127.0.0.1:5070 is already used by sip.listen on line 3`},
		{"XMPP on a SIP port", d + "[sip]\nlisten = [\"tcp://127.0.0.1:5060\"]\n[xmpp]\nc2s_listen = [\"localhost:5060\"]\n",
			`umppd.toml:5: xmpp.c2s_listen: tcp port 127.0.0.1:5060 is already used by sip.listen on line 3`},
		{"XMPP on a wildcard", d + "[xmpp]\nc2s_listen = [\"0.0.0.0:5269\"]\n",
			`umppd.toml:3: xmpp.c2s_listen: tcp port 0.0.0.0:5269 is already used by xmpp.s2s_listen (default)`},
		{"peer is a hosted domain", d + "[[peer]]\ndomain = \"MONTAGUE.example.net\"\nxmpp = \"127.0.0.2:5269\"\n",
			`umppd.toml:3: peer.domain: "montague.example.net" is one of our own domains, not a peer`},
		{"duplicate peer", d + "[[peer]]\ndomain = \"capulets.example.com\"\nxmpp = \"127.0.0.2:5269\"\n[[peer]]\ndomain = \"capulets.example.com\"\nsip = \"tls://127.0.0.2:5061\"\n",
			`umppd.toml:6: peer.domain: duplicate peer "capulets.example.com" (already configured on line 2)`},
		{"peer without target", d + "[[peer]]\ndomain = \"capulets.example.com\"\n",
			`umppd.toml:2: peer: set sip, xmpp or both for peer "capulets.example.com"`},
		{"peer umpp without sip", d + "[[peer]]\ndomain = \"capulets.example.com\"\nxmpp = \"127.0.0.2:5269\"\nmode = \"umpp\"\n",
			`umppd.toml:5: peer.mode: "umpp" needs both sip and xmpp targets`},
		{"peer bad sip URL", d + "[[peer]]\ndomain = \"capulets.example.com\"\nsip = \"sips://127.0.0.2:5061\"\n",
			`umppd.toml:4: peer.sip: "sips://127.0.0.2:5061": scheme "sips" is not udp, tcp or tls`},
		{"bad duration", d + "[session]\nidle_timeout = \"10 minutes\"\n",
			`umppd.toml:3: session.idle_timeout: invalid duration "10 minutes": write a number with a unit, e.g. "90s", "10m" or "1h"`},
		{"zero duration", d + "[xmpp]\ns2s_idle_timeout = \"0s\"\n",
			`umppd.toml:3: xmpp.s2s_idle_timeout: must be greater than zero`},
		{"negative limit", d + "[limits]\nmax_stanza_bytes = -1\n",
			`umppd.toml:3: limits.max_stanza_bytes: must be greater than zero`},
		{"unknown digest algorithm", d + "[sip]\ndigest_algorithms = [\n  \"MD5\",\n  \"SHA-512\",\n]\n",
			`umppd.toml:5: sip.digest_algorithms: "SHA-512" is not one of [SHA-256 MD5]`},
		{"digest algorithm twice", d + "[sip]\ndigest_algorithms = [\"md5\", \"MD5\"]\n",
			`umppd.toml:3: sip.digest_algorithms: MD5 is listed twice`},
		{"no digest algorithm", d + "[sip]\ndigest_algorithms = []\n",
			`umppd.toml:3: sip.digest_algorithms: at least one algorithm is needed: "SHA-256" and/or "MD5"`},
		{"bad log level", d + "[log]\nlevel = \"verbose\"\n",
			`umppd.toml:3: log.level: "verbose" is not one of [debug info warn error]`},
		{"bad policy", d + "[federation]\npolicy = \"closed\"\n",
			`umppd.toml:3: federation.policy: "closed" is not one of [open allowlist]`},
		{"bad allow entry", d + "[federation]\nallow = [\"a_b.example\"]\n",
			`umppd.toml:3: federation.allow: invalid domain "a_b.example": label "a_b" contains '_'; only letters, digits and '-' are allowed`},
		{"dns server not an IP", d + "[dns]\nserver = \"ns.example:53\"\n",
			`umppd.toml:3: dns.server: "ns.example:53": the host must be an IP address`},
		{"inline table key", d + "sip = { listen = [], agent = \"x\" }\n",
			`umppd.toml:2: sip.agent: unknown key`},
		{"peers as inline tables", d + "peer = [\n  { domain = \"capulets.example.com\", xmpp = \"127.0.0.2:5269\" },\n  { domain = \"montague.example.net\", xmpp = \"127.0.0.3:5269\" },\n]\n",
			`umppd.toml:4: peer.domain: "montague.example.net" is one of our own domains, not a peer`},
		{"peer not a table", d + "peer = \"capulets.example.com\"\n",
			`umppd.toml:2: peer: expected [[peer]] tables, got the string "capulets.example.com"`},
		{"integer out of range", d + "[limits]\nmax_stanza_bytes = 99999999999\n",
			`umppd.toml:3: limits.max_stanza_bytes: 99999999999 is out of range`},
		{"float for an integer", d + "[limits]\nmax_stanza_bytes = 1.5\n",
			`umppd.toml:3: limits.max_stanza_bytes: expected an integer, got the number 1.5`},
		{"syntax error", d + "[sip\nlisten = []\n",
			`umppd.toml:2: syntax error: expected ']' to close table name`},
		{"key defined twice", d + "[log]\nlevel = \"info\"\nlevel = \"debug\"\n",
			`umppd.toml:4: syntax error: key level is already defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, dir, tt.doc)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	dir := t.TempDir()
	doc := `domains = ["montague.example.net", "bad..domain"]
data_dir = "data"
verbose = true

[sip]
listen = ["udp://127.0.0.1:99999", "tls://127.0.0.1:5061"]

[xmpp]
c2s_listen = ["127.0.0.1:5061"]
s2s_idle_timeout = "soon"

[tls]
cert = "missing.crt"

[[peer]]
domain = "montague.example.net"
sip = "tcp://127.0.0.2:5060"

[limits]
max_offline_per_user = 0

[log]
format = "xml"
`
	want := []string{
		`umppd.toml:1: domains: invalid domain "bad..domain": empty label`,
		`umppd.toml:3: verbose: unknown key`,
		`umppd.toml:6: sip.listen: "udp://127.0.0.1:99999": port "99999" is not a number from 1 to 65535`,
		`umppd.toml:9: xmpp.c2s_listen: tcp port 127.0.0.1:5061 is already used by sip.listen on line 6`,
		`umppd.toml:10: xmpp.s2s_idle_timeout: invalid duration "soon": write a number with a unit, e.g. "90s", "10m" or "1h"`,
		`umppd.toml:13: tls.cert: a certificate needs its private key: set tls.key too (or neither, for a self-signed certificate)`,
		`umppd.toml:16: peer.domain: "montague.example.net" is one of our own domains, not a peer`,
		`umppd.toml:20: limits.max_offline_per_user: must be greater than zero`,
		`umppd.toml:23: log.format: "xml" is not one of [text json]`,
	}
	got := problems(t, dir, doc)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOverlayAndPaths(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "server")
	if err := os.Mkdir(filepath.Join(dir, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeCert(t, filepath.Join(dir, "ca"), "peer")
	doc := `domains = ["Montague.Example.NET"]
data_dir = "var/umppd"
[sip]
user_agent = "test"
[tls]
cert = "server.crt"
key = "` + filepath.Join(dir, "server.key") + `"
ca = "ca/peer.crt"
[[peer]]
domain = "Capulets.Example.COM"
xmpp = "[::1]:5269"
[log]
level = "debug"
`
	name := filepath.Join(dir, "umppd.toml")
	if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(name)
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	def := Default()
	tests := []struct {
		what      string
		got, want any
	}{
		{"file", c.File, name},
		{"domains lower-cased", c.Domains, []string{"montague.example.net"}},
		{"data_dir against the file's directory", c.DataDir, filepath.Join(dir, "var", "umppd")},
		{"sip.user_agent set", c.SIP.UserAgent, "test"},
		{"sip.digest_algorithms default", c.SIP.DigestAlgorithms, []string{"SHA-256", "MD5"}},
		{"sip.listen default kept", c.SIP.Listen, def.SIP.Listen},
		{"xmpp default kept", c.XMPP, def.XMPP},
		{"tls.cert relative", c.TLS.Cert, filepath.Join(dir, "server.crt")},
		{"tls.key absolute", c.TLS.Key, filepath.Join(dir, "server.key")},
		{"tls.ca relative", c.TLS.CA, filepath.Join(dir, "ca", "peer.crt")},
		{"peer", c.Peers, []Peer{{Domain: "capulets.example.com", XMPP: "[::1]:5269", Mode: "auto"}}},
		{"log.level set", c.Log.Level, "debug"},
		{"log.format default kept", c.Log.Format, "text"},
		{"limits default kept", c.Limits, def.Limits},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.what, tt.got, tt.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("Load of a missing file: %v", err)
	}
	var ps Problems
	if errors.As(err, &ps) {
		t.Errorf("a missing file is reported as configuration problems: %v", err)
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"montague.example.net", "montague.example.net"},
		{"Montague.EXAMPLE.net", "montague.example.net"},
		{"localhost", "localhost"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"a-b.c1.example", "a-b.c1.example"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{"", ""},
		{"-bad.example", ""},
		{"bad-.example", ""},
		{"exa mple.com", ""},
		{"a..b", ""},
		{".a.b", ""},
		{"a.b.", ""},
		{strings.Repeat("a", 64) + ".example", ""},
		{strings.Repeat("abcdefghi.", 25) + "abcd", ""}, // 254 characters
		{"bücher.example", ""},
		{"under_score.example", ""},
		{"127.0.0.1", ""},
		{"::1", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeDomain(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// 253 characters exactly is fine.
	ok := strings.Repeat("abcdefghi.", 25) + "abc"
	if _, err := NormalizeDomain(ok); err != nil {
		t.Errorf("NormalizeDomain of %d characters: %v", len(ok), err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Listen
		addr string
		err  string
	}{
		{"udp://127.0.0.1:5060", Listen{"udp", "127.0.0.1", 5060}, "127.0.0.1:5060", ""},
		{"tls://[::1]:5061", Listen{"tls", "::1", 5061}, "[::1]:5061", ""},
		{"TLS://127.0.0.1:5061", Listen{"tls", "127.0.0.1", 5061}, "127.0.0.1:5061", ""},
		{"tcp://sip.capulets.example.com:5060", Listen{"tcp", "sip.capulets.example.com", 5060}, "sip.capulets.example.com:5060", ""},
		{"tls://127.0.0.1", Listen{}, "", "is not host:port"},
		{"tls://:5061", Listen{}, "", "has no host"},
		{"ws://127.0.0.1:80", Listen{}, "", `scheme "ws" is not udp, tcp or tls`},
		{"sip:alice@example.com", Listen{}, "", "is not a URL"},
		{"", Listen{}, "", "is not a URL"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseURL(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || got.Addr() != tt.addr || got.String() != strings.ToLower(tt.in[:3])+tt.in[3:] {
			t.Errorf("ParseURL(%q) = %+v (addr %q, string %q), %v; want %+v", tt.in, got, got.Addr(), got.String(), err, tt.want)
		}
	}
}

func TestReloadable(t *testing.T) {
	base := func() *Config {
		c, err := Load("umppd.example.toml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name          string
		change        func(c *Config)
		live, restart []string
	}{
		{"nothing", func(*Config) {}, nil, nil},
		{"live keys", func(c *Config) {
			c.TLS.CA = "/etc/umppd/ca.pem"
			c.Peers[0].XMPP = "127.0.0.3:5269"
			c.Federation.Policy = "allowlist"
			c.Limits.MaxStanzaBytes = 1
			c.Log.Level = "debug"
			c.DNS.Server = "127.0.0.1:53"
			c.Session.IdleTimeout = time.Minute
		}, []string{"tls.ca", "peer", "federation.policy", "session.idle_timeout", "log.level"}, []string{"dns.server", "limits.max_stanza_bytes"}},
		{"restart keys", func(c *Config) {
			c.Domains = append(c.Domains, "verona.example.org")
			c.DataDir = "/var/lib/umppd"
			c.SIP.Listen = c.SIP.Listen[:1]
			c.XMPP.S2SListen = nil
			c.Log.Format = "json"
			c.Metrics.Listen = ""
		}, nil, []string{"domains", "data_dir", "sip.listen", "xmpp.s2s_listen", "log.format", "metrics.listen"}},
		{"peer added", func(c *Config) {
			c.Peers = append(c.Peers, Peer{Domain: "verona.example.org", XMPP: "127.0.0.4:5269", Mode: "auto"})
		}, []string{"peer"}, nil},
		{"lists emptied", func(c *Config) { c.Federation.Allow = nil; c.XMPP.C2SListen = []string{} },
			[]string{"federation.allow"}, []string{"xmpp.c2s_listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, c := base(), base()
			tt.change(c)
			live, restart := Reloadable(old, c)
			if !slices.Equal(live, tt.live) || !slices.Equal(restart, tt.restart) {
				t.Errorf("Reloadable = live %q, restart %q; want live %q, restart %q", live, restart, tt.live, tt.restart)
			}
		})
	}
	// Both sides empty: no change.
	a, b := base(), base()
	a.Federation.Allow, b.Federation.Allow = nil, []string{}
	if live, restart := Reloadable(a, b); live != nil || restart != nil {
		t.Errorf("nil vs empty allow list reported as a change: %q %q", live, restart)
	}
}
