package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// lineIndex maps paths in a TOML document to the line they are written
// on. A path is the dotted key with indexes for arrays of tables and for
// array elements: "sip", "sip.listen", "sip.listen[1]", "peer[0]",
// "peer[0].domain".
type lineIndex struct {
	lines map[string]int
	// keys lists the paths of key/value pairs, in document order.
	keys []string
}

// indexLines walks the document with go-toml's AST parser. It assumes the
// document is valid TOML (checked before by decoding it).
func indexLines(data []byte) (*lineIndex, error) {
	ix := &lineIndex{lines: map[string]int{}}
	var p unstable.Parser
	p.Reset(data)
	arrays := map[string]int{} // array-of-tables path -> elements so far
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path := ""
			it := e.Key()
			line := 0
			for it.Next() {
				k := it.Node()
				if line == 0 {
					line = p.Shape(k.Raw).Start.Line
				}
				path = join(path, string(k.Data))
				if n, ok := arrays[path]; ok && !it.IsLast() {
					// A sub-table of an array of tables refers to its last element.
					path += "[" + strconv.Itoa(n-1) + "]"
				}
			}
			if e.Kind == unstable.ArrayTable {
				n := arrays[path]
				arrays[path] = n + 1
				path += "[" + strconv.Itoa(n) + "]"
			}
			ix.set(path, line)
			prefix = path
		case unstable.KeyValue:
			ix.keyValue(&p, prefix, e)
		}
	}
	return ix, p.Error()
}

func (ix *lineIndex) keyValue(p *unstable.Parser, prefix string, kv *unstable.Node) {
	path := prefix
	line := 0
	it := kv.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		path = join(path, string(k.Data))
		if !it.IsLast() {
			ix.set(path, line) // an implicit table from a dotted key
		}
	}
	ix.set(path, line)
	ix.keys = append(ix.keys, path)
	ix.value(p, path, kv.Value())
}

func (ix *lineIndex) value(p *unstable.Parser, path string, v *unstable.Node) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			ep := path + "[" + strconv.Itoa(i) + "]"
			if c.Raw.Length > 0 {
				ix.set(ep, p.Shape(c.Raw).Start.Line)
			}
			ix.value(p, ep, c)
			i++
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				ix.keyValue(p, path, c)
			}
		}
	}
}

func (ix *lineIndex) set(path string, line int) {
	if _, ok := ix.lines[path]; !ok {
		ix.lines[path] = line
	}
}

// line returns the line of path, or of the nearest enclosing path written
// in the document, or 0.
func (ix *lineIndex) line(path string) int {
	for path != "" {
		if n, ok := ix.lines[path]; ok {
			return n
		}
		path = parent(path)
	}
	return 0
}

// parent strips the last component (".key" or "[n]") of a path.
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// keyOf turns a path into the key an operator knows: "peer[1].domain" is
// "peer.domain", "sip.listen[0]" is "sip.listen".
func keyOf(path string) string {
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
