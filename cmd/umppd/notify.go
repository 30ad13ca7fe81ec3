package main

import (
	"context"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd (Type=notify) about the daemon's state through
// $NOTIFY_SOCKET; without that variable every call does nothing.
type notifier struct{ log *slog.Logger }

func (n notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// ready is sent once every listener is bound.
func (n notifier) ready() { n.send(sd.SdNotifyReady) }

// stopping is sent when shutdown begins.
func (n notifier) stopping() { n.send(sd.SdNotifyStopping) }

// reloading is sent before a SIGHUP reload; ready() follows it.
func (n notifier) reloading() {
	n.send(sd.SdNotifyReloading + "\nMONOTONIC_USEC=" + sd.SdNotifyMonotonicUsec())
}

// watchdog pings systemd at half the WatchdogSec interval until ctx ends,
// when the unit sets one.
func (n notifier) watchdog(ctx context.Context) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.send(sd.SdNotifyWatchdog)
		}
	}
}
