package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/umpp/umpp/config"
)

// loadConfig reads the configuration at path, or the embedded default when
// path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (default: the embedded default)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: check-config takes no arguments besides -config", errUsage)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			// One problem a line, FILE:LINE: key: what is wrong.
			fmt.Fprintln(stderr, strings.TrimRight(probs.Error(), "\n"))
			return errReported
		}
		return err
	}
	name := cfg.File
	if name == "" {
		name = "(embedded default)"
	}
	fmt.Fprintf(stdout, "%s: ok (domains %s)\n", name, strings.Join(cfg.Domains, ", "))
	return nil
}

// newLogger builds the process logger: structured records on w, text or
// JSON, at a level that SIGHUP can change.
func newLogger(w io.Writer, format string, level *slog.LevelVar) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: log format %q: want text or json", errUsage, format)
}

// parseLevel maps the configuration's level names onto slog levels.
func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// stdinIsTerminal reports whether r is an interactive terminal.
func stdinIsTerminal(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return 0, false
	}
	return int(f.Fd()), true
}
