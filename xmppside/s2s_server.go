package xmppside

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ListenS2S binds the server-to-server listeners (RFC 6120; default port
// 5269, STARTTLS). Ports may be 0. Call it before Serve, with or instead
// of Listen. On error nothing stays bound.
func (s *Server) ListenS2S(addrs []string) error {
	if len(s.opts.DialbackSecret) == 0 {
		return errors.New("xmppside: listen s2s: no dialback secret")
	}
	var lc net.ListenConfig
	var bound []net.Listener
	for _, a := range addrs {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			for _, b := range bound {
				_ = b.Close()
			}
			return fmt.Errorf("xmppside: listen s2s %s: %w", a, err)
		}
		bound = append(bound, l)
	}
	s.mu.Lock()
	s.s2sLn = append(s.s2sLn, bound...)
	s.mu.Unlock()
	for _, l := range bound {
		s.log.Debug("listening", "addr", l.Addr().String(), "mode", "s2s")
	}
	return nil
}

// S2SAddrs returns the bound addresses of the s2s listeners.
func (s *Server) S2SAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.s2sLn {
		out = append(out, l.Addr())
	}
	return out
}

// S2S returns the outbound server-to-server side as a Remote, for a
// caller that sets its own Options.Remote (the UMPP session layer) and
// hands XMPP-only domains on to s2s. It needs Options.Resolver and
// DialbackSecret. Serve's end closes its streams.
func (s *Server) S2S() Remote { return s.s2s }

// startS2S registers an inbound server-to-server connection in
// s.s2sConns and returns what serves it.
func (s *Server) startS2S(ctx context.Context, nc net.Conn) func() {
	c := s.newS2SIn(nc)
	track(s, s.s2sConns, c)
	return func() {
		defer untrack(s, s.s2sConns, c)
		c.serve(ctx)
	}
}
