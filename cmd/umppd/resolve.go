package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/umpp/umpp/addressing"
	"github.com/umpp/umpp/config"
)

func cmdResolve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (default: the embedded default)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: resolve takes one URI or JID", errUsage)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	addr, scheme, err := addressing.Parse(fs.Arg(0))
	if err != nil {
		return err
	}
	r, err := newResolver(cfg, nil)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "address %s (from %s)\n", addr, scheme)
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "  im:\t%s\n", addr.IM())
	fmt.Fprintf(tw, "  pres:\t%s\n", addr.Pres())
	fmt.Fprintf(tw, "  sip:\t%s\n", addr.SIP())
	fmt.Fprintf(tw, "  jid:\t%s\n", addr.String())
	tw.Flush()

	if slices.Contains(cfg.Domains, addr.Domain) {
		fmt.Fprintf(stdout, "domain %s is hosted here: delivered locally\n", addr.Domain)
		return nil
	}
	res, err := r.Resolve(ctx, addr.Domain)
	if err != nil {
		return err
	}
	src := res.ModeSource
	if src == "" {
		src = "DNS"
	}
	fmt.Fprintf(stdout, "domain %s: mode %s (%s)\n", res.Domain, res.Mode, src)
	printTargets(stdout, "SIP", res.SIP)
	printTargets(stdout, "XMPP", res.XMPP)
	return nil
}

func printTargets(w io.Writer, proto string, ts []addressing.Target) {
	if len(ts) == 0 {
		fmt.Fprintf(w, "%s targets: none\n", proto)
		return
	}
	fmt.Fprintf(w, "%s targets:\n", proto)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\ttransport\thost\tport\tpriority\tweight\tsource")
	for i, t := range ts {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%d\t%s\n", i+1, t.Transport, t.Host, t.Port, t.Priority, t.Weight, t.Source)
	}
	tw.Flush()
}

// staticPeers converts the configuration's [[peer]] tables for the
// resolver.
func staticPeers(cfg *config.Config) []addressing.StaticPeer {
	ps := make([]addressing.StaticPeer, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		ps = append(ps, addressing.StaticPeer{Domain: p.Domain, SIP: p.SIP, XMPP: p.XMPP, Mode: p.Mode})
	}
	return ps
}
