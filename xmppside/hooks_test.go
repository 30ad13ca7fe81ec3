package xmppside

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingHooks is a PresenceObserver and Metrics that remembers what
// it was told.
type recordingHooks struct {
	mu       sync.Mutex
	presence []Stanza
	routed   map[string]int
	failed   map[string]int
}

func (h *recordingHooks) LocalPresence(_ context.Context, p Stanza) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.presence = append(h.presence, p)
}

func (h *recordingHooks) MessageRouted(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routed[path]++
}

func (h *recordingHooks) DeliveryFailed(cond string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed[cond]++
}

func (h *recordingHooks) snapshot() ([]Stanza, map[string]int, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, f := map[string]int{}, map[string]int{}
	for k, v := range h.routed {
		r[k] = v
	}
	for k, v := range h.failed {
		f[k] = v
	}
	return append([]Stanza(nil), h.presence...), r, f
}

// The session layer learns local presence changes, and the metrics count
// deliveries (online and offline) and failures, but not IQ errors.
func TestHooks(t *testing.T) {
	h := &recordingHooks{routed: map[string]int{}, failed: map[string]int{}}
	srv := startHost(t, hostConfig{domain: montague, ip: "127.0.0.2", tweak: func(o *Options) {
		o.Presence = h
		o.Metrics = h
	}})
	srv.addUser("romeo", "r-pw")
	srv.addUser("benvolio", "b-pw")
	srv.addUser("mercutio", "m-pw") // never logs in: gets offline messages
	romeo := srv.login("romeo", "r-pw", "orchard")
	benvolio := srv.login("benvolio", "b-pw", "street")

	romeo.send(`<presence><show>away</show><status>by the wall</status></presence>`)
	romeo.sync()
	romeo.send(`<message to='benvolio@montague.example.net/street' type='chat' id='m1'><body>hi</body></message>`)
	benvolio.nextWhere("m1", isMessage("m1"))
	romeo.send(`<message to='mercutio@montague.example.net' type='chat' id='m2'><body>later</body></message>`)
	romeo.send(`<message to='nobody@montague.example.net' type='chat' id='m3'><body>?</body></message>`)
	romeo.nextWhere("bounce m3", isMessage("m3"))
	romeo.send(`<iq type='get' id='q1' to='montague.example.net'><unknown xmlns='urn:example:nothing'/></iq>`)
	romeo.sync()
	romeo.close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		pres, routed, failed := h.snapshot()
		done := len(pres) == 2 && routed["xmpp->xmpp"] == 2 && failed["service-unavailable"] == 1
		if done || time.Now().After(deadline) {
			if len(pres) != 2 || pres[0].From != "romeo@montague.example.net/orchard" || pres[0].Type != "" ||
				!strings.Contains(string(pres[0].Raw), "<show>away</show>") || pres[1].Type != "unavailable" {
				t.Errorf("presence seen by the observer: %+v; want romeo's away, then unavailable", pres)
			}
			if routed["xmpp->xmpp"] != 2 || len(routed) != 1 {
				t.Errorf("routed = %v, want 2 xmpp->xmpp (one online, one offline)", routed)
			}
			if failed["service-unavailable"] != 1 || len(failed) != 1 {
				t.Errorf("failed = %v, want one service-unavailable (the IQ error does not count)", failed)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
