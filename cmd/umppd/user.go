package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/config"
	"github.com/umpp/umpp/store"
	"github.com/umpp/umpp/store/sqlite"
)

// maxPasswordBytes bounds what is read from stdin for a password.
const maxPasswordBytes = 1024

func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: user needs a verb: add, del, passwd or list", errUsage)
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("user "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (default: the embedded default)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	switch verb {
	case "add", "del", "passwd":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: user %s takes one JID", errUsage, verb)
		}
	case "list":
		if fs.NArg() > 1 {
			return fmt.Errorf("%w: user list takes at most one domain", errUsage)
		}
	default:
		return fmt.Errorf("%w: unknown user verb %q", errUsage, verb)
	}

	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	if verb == "list" {
		domain := ""
		if fs.NArg() == 1 {
			if domain, err = addressing.ParseDomain(fs.Arg(0)); err != nil {
				return err
			}
		}
		users, err := db.ListUsers(ctx, domain)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return nil
	}

	addr, err := localAccount(cfg, fs.Arg(0))
	if err != nil {
		return err
	}
	jid := addr.BareJID()
	switch verb {
	case "del":
		if err := db.DeleteUser(ctx, jid); err != nil {
			return notFoundIs(err, jid)
		}
		fmt.Fprintf(stdout, "deleted %s\n", jid)
		return nil
	}

	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	creds, err := store.DeriveCredentials(addr.Local, addr.Domain, password)
	if err != nil {
		return err
	}
	if verb == "add" {
		err = db.CreateUser(ctx, store.User{JID: jid, Credentials: creds})
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("%s already exists (use 'umppd user passwd' to change its password)", jid)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", jid)
		return nil
	}
	if err := db.SetCredentials(ctx, jid, creds); err != nil {
		return notFoundIs(err, jid)
	}
	fmt.Fprintf(stdout, "changed the password of %s\n", jid)
	return nil
}

func notFoundIs(err error, jid string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no account %s", jid)
	}
	return err
}

// localAccount parses s as the bare JID of an account in a hosted domain.
func localAccount(cfg *config.Config, s string) (addressing.Address, error) {
	addr, err := addressing.ParseJID(s)
	if err != nil {
		return addressing.Address{}, err
	}
	if addr.Local == "" || addr.Resource != "" {
		return addressing.Address{}, fmt.Errorf("%q is not a bare JID user@domain", s)
	}
	if !slices.Contains(cfg.Domains, addr.Domain) {
		return addressing.Address{}, fmt.Errorf("%s is not a hosted domain (hosted: %s)", addr.Domain, strings.Join(cfg.Domains, ", "))
	}
	return addr, nil
}

// openStore opens the SQLite store in the configured data directory.
func openStore(ctx context.Context, cfg *config.Config) (*sqlite.DB, error) {
	return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "umppd.db"))
}

// readPassword reads a password from stdin: from a terminal with a prompt,
// without echo and confirmed; otherwise the first line of input. It is
// never echoed or logged.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if fd, ok := stdinIsTerminal(stdin); ok {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(p1))
	}
	r := bufio.NewReaderSize(io.LimitReader(stdin, maxPasswordBytes+2), maxPasswordBytes+2)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	return checkPassword(line)
}

func checkPassword(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("empty password: give it on stdin (one line)")
	case len(p) > maxPasswordBytes:
		return "", fmt.Errorf("password longer than %d bytes", maxPasswordBytes)
	}
	return p, nil
}
