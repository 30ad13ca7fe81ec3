package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	listenType   = reflect.TypeFor[Listen]()
)

// decoder fills a Config from the generic tree go-toml decodes a document
// into, reporting unknown keys and values of the wrong type with their
// lines instead of stopping at the first.
type decoder struct {
	file  string
	index *lineIndex
	probs Problems
	// bad holds the paths whose values could not be decoded, so that
	// validation does not complain about them a second time.
	bad map[string]bool
}

func newDecoder(file string, index *lineIndex) *decoder {
	return &decoder{file: file, index: index, bad: map[string]bool{}}
}

// problem records a problem at path (see lineIndex).
func (d *decoder) problem(path, format string, args ...any) {
	d.probs = append(d.probs, Problem{
		File: d.file,
		Line: d.index.line(path),
		Key:  keyOf(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

func (d *decoder) fail(path, format string, args ...any) {
	d.bad[path] = true
	d.problem(path, format, args...)
}

// isBad reports whether path or an enclosing path failed to decode.
func (d *decoder) isBad(path string) bool {
	for ; path != ""; path = parent(path) {
		if d.bad[path] {
			return true
		}
	}
	return false
}

// decodeTable sets the fields of the struct v from the table m, leaving
// fields whose keys m does not have as they are (the defaults).
func (d *decoder) decodeTable(path string, m map[string]any, v reflect.Value) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := join(path, k)
		f, ok := fieldByTag(v, k)
		if !ok {
			d.fail(p, "unknown key%s", suggest(v.Type(), k))
			continue
		}
		d.decodeValue(p, m[k], f)
	}
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag == key && tag != "-" {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// suggest returns " (did you mean x?)" for a key of struct type t spelled
// close to key, or "".
func suggest(t reflect.Type, key string) string {
	// Allow one edit per three characters, at least one.
	best, bestDist := "", max(1, len(key)/3)+1
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		if dist := editDistance(key, tag); dist < bestDist {
			best, bestDist = tag, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) decodeValue(path string, raw any, v reflect.Value) {
	switch {
	case v.Type() == durationType:
		s, ok := raw.(string)
		if !ok {
			d.fail(path, `expected a duration string such as "10m", got %s`, typeName(raw))
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(path, `invalid duration %q: write a number with a unit, e.g. "90s", "10m" or "1h"`, s)
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Type() == listenType:
		s, ok := raw.(string)
		if !ok {
			d.fail(path, `expected a URL string such as "tls://127.0.0.1:5061", got %s`, typeName(raw))
			return
		}
		l, err := ParseURL(s)
		if err != nil {
			d.fail(path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(l))
		return
	}

	switch v.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.fail(path, "expected a string, got %s", typeName(raw))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.fail(path, "expected true or false, got %s", typeName(raw))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		n, ok := raw.(int64)
		if !ok {
			d.fail(path, "expected an integer, got %s", typeName(raw))
			return
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			d.fail(path, "%d is out of range", n)
			return
		}
		v.SetInt(n)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			if v.Type().Elem().Kind() == reflect.Struct && v.Type().Elem() != listenType {
				d.fail(path, "expected [[%s]] tables, got %s", keyOf(path), typeName(raw))
			} else {
				d.fail(path, "expected a list, got %s", typeName(raw))
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, e := range list {
			d.decodeValue(fmt.Sprintf("%s[%d]", path, i), e, s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(path, "expected a table, got %s", typeName(raw))
			return
		}
		d.decodeTable(path, m, v)
	default:
		// Only reached if Config gains a field of a kind not handled above.
		panic(fmt.Sprintf("config: no decoder for %s (%s)", v.Type(), path))
	}
}

// typeName names the TOML type of a value decoded by go-toml.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return strings.TrimPrefix(fmt.Sprintf("a %T", v), "a toml.")
	}
}
