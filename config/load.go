package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// defaultTOML is the configuration used for keys a file leaves out, and
// the whole configuration when umppd runs without one.
//
//go:embed default.toml
var defaultTOML string

// DefaultFile is the name problems in the embedded default are reported
// under.
const DefaultFile = "(default configuration)"

// Default returns the embedded default configuration (config/default.toml):
// the domain "localhost" served on loopback addresses, a self-signed
// certificate, and data in "umppd-data" under the working directory.
func Default() *Config {
	cfg, err := parse(DefaultFile, "", []byte(defaultTOML), false)
	if err != nil {
		// default.toml is part of the program and tested; this is a bug.
		panic(fmt.Sprintf("config: embedded default is invalid:\n%v", err))
	}
	return cfg
}

// Load reads and validates the configuration file at path. Keys the file
// leaves out take their defaults; relative paths in it are taken relative
// to the file's directory. The error is a Problems listing everything
// wrong with the file, or an I/O error if it cannot be read.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a document already read; name is reported in
// problems, and relative paths are resolved against its directory.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, filepath.Dir(name), data, true)
}

// parse decodes data over the embedded default (unless data is the
// default) and validates the result. Relative paths are resolved against
// baseDir ("" means the working directory).
func parse(name, baseDir string, data []byte, overlay bool) (*Config, error) {
	base, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}

	tree, index, probs := decodeTree(name, data)
	if probs != nil {
		return nil, probs
	}

	cfg := &Config{}
	if overlay {
		defTree, defIndex, defProbs := decodeTree(DefaultFile, []byte(defaultTOML))
		if defProbs != nil {
			return nil, defProbs
		}
		dd := newDecoder(DefaultFile, defIndex)
		dd.decodeTable("", defTree, reflect.ValueOf(cfg).Elem())
		if dd.probs != nil {
			return nil, dd.probs
		}
		cfg.Domains = nil // the default's "localhost" is not a default for files
	}
	cfg.File = name
	if !overlay {
		cfg.File = ""
	}

	d := newDecoder(name, index)
	d.decodeTable("", tree, reflect.ValueOf(cfg).Elem())
	v := &validator{decoder: d, cfg: cfg, base: base}
	v.validate()
	if d.probs != nil {
		slices.SortStableFunc(d.probs, func(a, b Problem) int {
			// Problems without a line go last.
			switch {
			case a.Line == b.Line:
				return 0
			case a.Line == 0:
				return 1
			case b.Line == 0:
				return -1
			}
			return a.Line - b.Line
		})
		return nil, d.probs
	}
	return cfg, nil
}

// decodeTree decodes a TOML document into go-toml's generic tree and
// indexes the lines of its keys. A syntax error (or a key defined twice) is
// returned as a single Problem with its line.
func decodeTree(name string, data []byte) (map[string]any, *lineIndex, Problems) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		p := Problem{File: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			// de.Key() is relative to the table the error is in, so it is
			// not reported as the key.
			p.Line, _ = de.Position()
		}
		p.Msg = "syntax error: " + p.Msg
		return nil, nil, Problems{p}
	}
	if tree == nil {
		tree = map[string]any{}
	}
	index, err := indexLines(data)
	if err != nil {
		// go-toml decoded the document, so its parser cannot fail on it.
		return nil, nil, Problems{{File: name, Msg: fmt.Sprintf("syntax error: %v", err)}}
	}
	return tree, index, nil
}
