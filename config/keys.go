package config

import (
	"reflect"
	"slices"
	"strings"
)

// leaf is one configuration key and where its value lives in Config.
type leaf struct {
	key   string // dotted, e.g. "sip.listen", "peer.domain"
	index []int  // reflect field index path from Config
	// table is set for keys inside an array of tables ("peer.domain"): the
	// key of that array ("peer") and its field index.
	table      string
	tableIndex []int
}

// leaves lists the keys of Config in declaration order.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, index []int, table string, tableIndex []int)
	walk = func(t reflect.Type, prefix string, index []int, table string, tableIndex []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			key := join(prefix, tag)
			idx := append(slices.Clone(index), i)
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != listenType:
				walk(f.Type, key, idx, table, tableIndex)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != listenType:
				walk(f.Type.Elem(), key, nil, key, idx)
			default:
				out = append(out, leaf{key: key, index: idx, table: table, tableIndex: tableIndex})
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil, "", nil)
	return out
}

// Keys returns every configuration key umppd knows, dotted ("data_dir",
// "sip.listen", "peer.domain"), in the order Config declares them.
func Keys() []string {
	ls := leaves()
	keys := make([]string, len(ls))
	for i, l := range ls {
		keys[i] = l.key
	}
	return keys
}

// isLive reports whether a change of key can be applied on SIGHUP without
// a restart.
func isLive(key string) bool {
	switch key {
	case "peer", "log.level", "session.idle_timeout":
		return true
	}
	for _, table := range []string{"tls.", "federation."} {
		if strings.HasPrefix(key, table) {
			return true
		}
	}
	return false
}

// Reloadable compares the running configuration with one newly loaded (on
// SIGHUP) and returns the keys that changed, split into those that can be
// applied live (TLS files, peers, federation, log level, session idle
// timeout) and those that only take effect after a
// restart (domains, data directory, listen addresses, log format, ...).
// A change anywhere in the [[peer]] tables is reported as "peer".
//
// Changed TLS file names are reported; a certificate replaced under the
// same name is not a configuration change (the certificate store re-reads
// the files on every reload anyway).
func Reloadable(old, new *Config) (live, restart []string) {
	o, n := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	seenTable := map[string]bool{}
	for _, l := range leaves() {
		key := l.key
		var a, b reflect.Value
		if l.table != "" {
			if seenTable[l.table] {
				continue
			}
			seenTable[l.table] = true
			key = l.table
			a, b = o.FieldByIndex(l.tableIndex), n.FieldByIndex(l.tableIndex)
		} else {
			a, b = o.FieldByIndex(l.index), n.FieldByIndex(l.index)
		}
		if equal(a, b) {
			continue
		}
		if isLive(key) {
			live = append(live, key)
		} else {
			restart = append(restart, key)
		}
	}
	return live, restart
}

// equal compares two values, treating nil and empty slices as equal.
func equal(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
