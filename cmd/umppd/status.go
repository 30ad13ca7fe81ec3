package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/umpp/umpp/internal/admin"
)

// statusTimeout bounds one question to the daemon.
const statusTimeout = 10 * time.Second

// cmdStatus runs `umppd status|sessions|peers`: it asks the daemon of the
// configuration over the admin socket in its data directory.
func cmdStatus(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet(cmd, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	path := flags.String("config", "", "configuration file (default: the embedded default)")
	asJSON := flags.Bool("json", false, "print the daemon's answer as JSON")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no arguments besides its flags", errUsage, cmd)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	sock := adminSocket(cfg.DataDir)
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := admin.Query(ctx, sock)
	if errors.Is(err, admin.ErrNotRunning) {
		why := "no socket at " + sock
		if !errors.Is(err, fs.ErrNotExist) {
			why = "nothing answers on " + sock
		}
		fmt.Fprintf(stderr, "umppd %s: no umppd is running (%s)\n", cmd, why)
		return errReported
	}
	if err != nil {
		return err
	}
	if *asJSON {
		var v any = st
		switch cmd {
		case "sessions":
			v = st.Sessions
		case "peers":
			v = st.Peers
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch cmd {
	case "sessions":
		return printSessions(stdout, st.Sessions)
	case "peers":
		return printPeers(stdout, st.Peers)
	}
	return printStatus(stdout, st, time.Now())
}

func printStatus(w io.Writer, st admin.Status, now time.Time) error {
	state := "ready"
	if !st.Ready {
		state = "not ready"
	}
	fmt.Fprintf(w, "umppd %s, pid %d, up %s, %s\n", st.Version, st.PID, now.Sub(st.Started).Truncate(time.Second), state)
	fmt.Fprintf(w, "domains: %s\n", strings.Join(st.Domains, ", "))
	fmt.Fprintln(w, "listeners:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Proto, l.Addr, l.TLS)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	c := st.Counts
	fmt.Fprintf(w, "peers: %d\n", c.Peers)
	if len(st.Peers) > 0 {
		if err := printPeerTable(w, st.Peers, "  "); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "sessions: %d xmpp (%d connections), %d sip registrations\n", c.XMPPSessions, c.C2SConnections, c.SIPRegistrations)
	fmt.Fprintf(w, "im sessions: %d\n", c.IMSessions)
	_, err := fmt.Fprintf(w, "subscriptions: %d in, %d out\n", c.SubscriptionsIn, c.SubscriptionsOut)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func printSessions(w io.Writer, ss []admin.Session) error {
	if len(ss) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTOCOL\tADDRESS\tREMOTE\tTLS\tCONTACT\tEXPIRES")
	for _, s := range ss {
		remote := s.Remote
		if s.Transport != "" {
			remote = s.Transport + "://" + remote
		}
		exp := "-"
		if !s.Expires.IsZero() {
			exp = s.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Protocol, s.Address, remote, dash(s.TLSVersion), dash(s.Contact), exp)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func printPeers(w io.Writer, ps []admin.Peer) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "no peer connections")
		return err
	}
	return printPeerTable(w, ps, "")
}

func printPeerTable(w io.Writer, ps []admin.Peer, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"DOMAIN\tLOCAL\tPROTOCOL\tDIRECTION\tAUTH\tTLS\tREMOTE\tSINCE")
	for _, p := range ps {
		since := "-"
		if !p.Since.IsZero() {
			since = p.Since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", indent, p.Domain, dash(p.Local), p.Protocol, p.Direction,
			dash(p.Auth), dash(p.TLSVersion), dash(p.Remote), since)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
