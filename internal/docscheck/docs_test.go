package docscheck

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/umpp/umpp/config"
)

const (
	reference  = "../../docs/configuration.md"
	defaultsIn = "../../config/default.toml"
)

// row is one line of the reference's key table.
type row struct {
	key, def string
	live     bool
	line     int
}

func readRows(t *testing.T) []row {
	t.Helper()
	rowRE := regexp.MustCompile("^\\| `([a-z0-9_.]+)` \\| (.*?) \\| (live|restart) \\| .* \\|$")
	data, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for i, l := range strings.Split(string(data), "\n") {
		if m := rowRE.FindStringSubmatch(l); m != nil {
			rows = append(rows, row{key: m[1], def: m[2], live: m[3] == "live", line: i + 1})
		} else if strings.HasPrefix(l, "| `") {
			t.Errorf("%s:%d: a table row not of the form | `key` | default | live/restart | meaning |: %q", reference, i+1, l)
		}
	}
	return rows
}

// The reference lists every key the code knows, once, and no other.
func TestReferenceListsEveryKey(t *testing.T) {
	known := config.Keys()
	var listed []string
	for _, r := range readRows(t) {
		if slices.Contains(listed, r.key) {
			t.Errorf("%s:%d: %s is listed twice", reference, r.line, r.key)
		}
		listed = append(listed, r.key)
		if !slices.Contains(known, r.key) {
			t.Errorf("%s:%d: %s is not a key umppd knows", reference, r.line, r.key)
		}
	}
	for _, k := range known {
		if !slices.Contains(listed, k) {
			t.Errorf("%s does not document %s", reference, k)
		}
	}
}

// Each default in the reference is the embedded default's value.
func TestReferenceDefaults(t *testing.T) {
	data, err := os.ReadFile(defaultsIn)
	if err != nil {
		t.Fatal(err)
	}
	var defaults map[string]any
	if err := toml.Unmarshal(data, &defaults); err != nil {
		t.Fatal(err)
	}
	for _, r := range readRows(t) {
		if strings.HasPrefix(r.key, "peer.") {
			continue // no peer by default; their defaults are per table
		}
		want, ok := lookup(defaults, r.key)
		if !ok {
			t.Errorf("%s:%d: %s has no value in %s", reference, r.line, r.key, defaultsIn)
			continue
		}
		lit := strings.TrimSuffix(strings.TrimPrefix(r.def, "`"), "`")
		var got map[string]any
		if err := toml.Unmarshal([]byte("v = "+lit), &got); err != nil {
			t.Errorf("%s:%d: %s: default %s is not a TOML value: %v", reference, r.line, r.key, r.def, err)
			continue
		}
		if !reflect.DeepEqual(got["v"], want) {
			t.Errorf("%s:%d: %s: documented default %s, the embedded default is %#v", reference, r.line, r.key, r.def, want)
		}
	}
}

// The reload column agrees with what config.Reloadable reports when the
// key changes.
func TestReferenceReload(t *testing.T) {
	for _, r := range readRows(t) {
		old := config.Default()
		next := config.Default()
		if !change(next, r.key) {
			t.Errorf("test cannot change %s; teach change() its type", r.key)
			continue
		}
		live, restart := config.Reloadable(old, next)
		want := r.key
		if strings.HasPrefix(r.key, "peer.") {
			want = "peer"
		}
		switch {
		case r.live && !slices.Contains(live, want):
			t.Errorf("%s:%d: %s is documented live; Reloadable says live %q, restart %q", reference, r.line, r.key, live, restart)
		case !r.live && !slices.Contains(restart, want):
			t.Errorf("%s:%d: %s is documented restart; Reloadable says live %q, restart %q", reference, r.line, r.key, live, restart)
		}
	}
}

// Every TOML example in the reference decodes and uses only known keys.
func TestReferenceExamples(t *testing.T) {
	data, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```toml example", reference)
	}
	for i, b := range blocks {
		var doc map[string]any
		if err := toml.Unmarshal([]byte(b[1]), &doc); err != nil {
			t.Errorf("example %d: %v", i+1, err)
			continue
		}
		for _, k := range flatten("", doc) {
			if !slices.Contains(config.Keys(), k) {
				t.Errorf("example %d uses %s, which umppd does not know", i+1, k)
			}
		}
	}
}

// lookup finds a dotted key in a decoded TOML document.
func lookup(doc map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	var cur any = doc
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// flatten lists the dotted keys of a decoded document; arrays of tables
// ([[peer]]) contribute "peer.<key>".
func flatten(prefix string, doc map[string]any) []string {
	var out []string
	for k, v := range doc {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			out = append(out, flatten(key, v)...)
		case []any:
			tables := false
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					tables = true
					out = append(out, flatten(key, m)...)
				}
			}
			if !tables {
				out = append(out, key)
			}
		default:
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// change alters the value of key in c so that Reloadable sees a change.
func change(c *config.Config, key string) bool {
	if strings.HasPrefix(key, "peer.") {
		c.Peers = append(c.Peers, config.Peer{Domain: "capulets.example.com", Mode: "auto"})
		return true
	}
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		f, ok := fieldByTag(v, part)
		if !ok {
			return false
		}
		v = f
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "-changed")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, v.Len()+1), reflect.Zero(v.Type().Elem())))
		if v.Len() == 1 && v.Index(0).Kind() == reflect.String {
			v.Index(0).SetString("changed")
		}
	default:
		return false
	}
	return true
}

func fieldByTag(v reflect.Value, tag string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == tag {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Relative links in the operator documentation and the README point at
// files that exist.
func TestLinks(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(data), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, m[1])
			}
		}
	}
}
