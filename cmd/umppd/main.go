// Command umppd runs a UMPP server: a SIP server and an XMPP host that work
// as one, as draft-mahy-impp-unified-proposal-00 describes.
//
// Usage:
//
//	umppd [serve] [-config FILE] [-log-format text|json]
//	umppd check-config -config FILE
//	umppd resolve [-config FILE] URI
//	umppd user add|del|passwd|list [-config FILE] JID|DOMAIN
//	umppd status|sessions|peers [-config FILE] [-json]
//	umppd version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errUsage marks errors that are the caller's words, not the system's: they
// exit with status 2 after the usage text.
var errUsage = errors.New("usage")

const usage = `usage:
  umppd [serve] [-config FILE] [-log-format text|json]
                                  run the server until SIGINT/SIGTERM; SIGHUP reloads
  umppd check-config -config FILE  validate a configuration and exit
  umppd resolve [-config FILE] URI show how im:, pres:, sip:, sips:, xmpp: URIs or JIDs are reached
  umppd user add|del|passwd [-config FILE] JID
                                  manage local accounts (password read from stdin)
  umppd user list [-config FILE] [DOMAIN]
  umppd status [-config FILE] [-json]
                                  ask the running daemon for its listeners, peers and counts
  umppd sessions [-config FILE] [-json]
                                  list the connected XMPP clients and SIP registrations
  umppd peers [-config FILE] [-json]
                                  list the server-to-server connections
  umppd version                   print the version
`

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (len(args[0]) == 0 || args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = cmdServe(ctx, args, stderr)
	case "check-config":
		err = cmdCheckConfig(args, stdout, stderr)
	case "resolve":
		err = cmdResolve(ctx, args, stdout, stderr)
	case "user":
		err = cmdUser(ctx, args, stdin, stdout, stderr)
	case "status", "sessions", "peers":
		err = cmdStatus(ctx, cmd, args, stdout, stderr)
	case "version":
		err = cmdVersion(args, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "umppd: %v\n%s", err, usage)
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "umppd %s: %v\n", cmd, err)
		return 1
	}
}

// errReported means the command already printed what went wrong.
var errReported = errors.New("reported")
