package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "umppd.sock"

// ioTimeout bounds one request: reading it and writing the answer.
const ioTimeout = 5 * time.Second

// maxRequest bounds a request line.
const maxRequest = 4096

// request is one line from a client.
type request struct {
	Cmd string `json:"cmd"`
}

// response is the one line answering it.
type response struct {
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Server answers on the admin socket.
type Server struct {
	path   string
	status func(ctx context.Context) Status
	log    *slog.Logger
	ln     *net.UnixListener

	mu      sync.Mutex
	serving bool
	wg      sync.WaitGroup
}

// ErrRunning is returned by Listen when another daemon answers on the
// socket.
var ErrRunning = errors.New("admin: another umppd is running")

// Listen binds the socket at path with mode 0600. A daemon already
// answering there is ErrRunning; a socket file nobody answers on is left
// over from a crash and is replaced. status is called for each "status"
// request and must be safe for concurrent use.
func Listen(ctx context.Context, path string, status func(ctx context.Context) Status, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin: %s exists and is not a socket", path)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx, path)
		cancel()
		if err == nil {
			return nil, fmt.Errorf("%w: %s answers", ErrRunning, path)
		}
		if !errors.Is(err, ErrNotRunning) {
			// Something is there but does not answer properly: leave it
			// to the operator rather than take over a live daemon's socket.
			return nil, fmt.Errorf("admin: %s exists and does not answer: %w", path, err)
		}
		log.Info("removing stale admin socket", "path", path, "err", err)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("admin: remove stale socket: %w", err)
		}
	}
	// The socket is created with the process umask; the data directory is
	// 0700 already, and the file is restricted at once below.
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin: restrict %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return &Server{path: path, status: status, log: log, ln: ul}, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until ctx ends, then closes the socket (removing
// its file) and waits for requests in progress.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("admin: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.ln.Close()
				return nil
			}
			s.log.Warn("admin socket accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
				continue
			case <-ctx.Done():
				s.ln.Close()
				return nil
			}
		}
		s.wg.Go(func() { s.handle(ctx, c) })
	}
}

// Close releases the socket of a Server whose Serve was never called.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return nil
	}
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("admin: close: %w", err)
	}
	return nil
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReaderSize(c, maxRequest).ReadSlice('\n')
	var resp response
	var req request
	switch {
	case err != nil:
		resp.Error = "request: want one JSON line"
	case json.Unmarshal(line, &req) != nil:
		resp.Error = "request: not JSON"
	case req.Cmd == "ping":
	case req.Cmd == "status":
		rctx, cancel := context.WithTimeout(ctx, ioTimeout)
		st := s.status(rctx)
		cancel()
		resp.Status = &st
	default:
		resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		s.log.Error("admin: encode answer", "err", err)
		return
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.log.Debug("admin: write answer", "err", err)
	}
}

// ErrNotRunning is returned by the client calls when no daemon answers
// on the socket (no socket file, or nobody listening on it).
var ErrNotRunning = errors.New("no umppd is running")

// Query asks the daemon at the socket path for its status.
func Query(ctx context.Context, path string) (Status, error) {
	resp, err := call(ctx, path, "status")
	if err != nil {
		return Status{}, err
	}
	if resp.Status == nil {
		return Status{}, fmt.Errorf("admin: %s: empty answer", path)
	}
	return *resp.Status, nil
}

func ping(ctx context.Context, path string) error {
	_, err := call(ctx, path, "ping")
	return err
}

func call(ctx context.Context, path, cmd string) (response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return response{}, fmt.Errorf("%w (%w)", ErrNotRunning, err)
		}
		return response{}, fmt.Errorf("admin: dial %s: %w", path, err)
	}
	defer c.Close()
	deadline := time.Now().Add(ioTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	req, err := json.Marshal(request{Cmd: cmd})
	if err != nil {
		return response{}, fmt.Errorf("admin: encode request: %w", err)
	}
	if _, err := c.Write(append(req, '\n')); err != nil {
		return response{}, fmt.Errorf("admin: %s: send: %w", path, err)
	}
	var resp response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return response{}, fmt.Errorf("admin: %s: read answer: %w", path, err)
	}
	if resp.Error != "" {
		return response{}, fmt.Errorf("admin: %s: daemon says: %s", path, resp.Error)
	}
	return resp, nil
}
